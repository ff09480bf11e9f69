// "Label in this browser": BlazeFace (short range: one 128x128 pass over the letterboxed frame) and the served model's
// ONNX classifier run on ONNX Runtime Web (WebAssembly) inside this page, so camera frames never leave the browser;
// the server only serves files (scripts/browser_mode.sh vendors them). It follows emotion/inference: blazeface.py
// (anchors, decoding, weighted NMS), faces.py (box scale and shift, eye levelling), data/preprocess.py (crop_face)
// and views.py (test-time views), with one detection pass and the canvas's resizing: close to the server's labels,
// not bit-exact. Its numbers (input size, anchors, scores, face box, face size) come from the server
// (/v1/browser/settings: realtime.* and the detector's own), so that both label alike.
"use strict";

const VENDOR = "/static/vendor/";
const CORNERS = [[0, 0], [-1, -1], [-1, 1], [1, -1], [1, 1]];

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`${src} is not on this server: run bash scripts/browser_mode.sh there`));
    document.head.append(script);
  });
}

function anchorCentres({ input_px: input, strides, anchors_per_cell: perCell }) {  // blazeface.anchors: x, y of each
  const centres = [];                                                              // anchor, in order
  for (let layer = 0; layer < strides.length;) {
    const stride = strides[layer];
    let repeat = 0;
    for (; layer < strides.length && strides[layer] === stride; layer++) repeat++;
    const cells = Math.ceil(input / stride);
    for (let row = 0; row < cells; row++) {
      for (let col = 0; col < cells; col++) {
        for (let k = 0; k < repeat * perCell; k++) centres.push([(col + 0.5) * input / cells, (row + 0.5) * input / cells]);
      }
    }
  }
  return centres;
}

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (box) => (box[2] - box[0]) * (box[3] - box[1]);
  return w * h / Math.max(area(a) + area(b) - w * h, 1e-9);
}

function weightedNms(found, limit) {  // blazeface.weighted_nms
  let order = [...found].sort((a, b) => b.score - a.score);
  const merged = [];
  while (order.length) {
    const cluster = order.filter((d, i) => i === 0 || iou(order[0].box, d.box) > limit);
    const total = cluster.reduce((sum, d) => sum + d.score, 0);
    const mean = (pick) => pick(cluster[0]).map((_, i) => cluster.reduce((sum, d) => sum + pick(d)[i] * d.score, 0) / total);
    merged.push({ box: mean((d) => d.box), keypoints: mean((d) => d.keypoints), score: order[0].score });
    order = order.filter((d) => !cluster.includes(d));
  }
  return merged;
}

function faceOf(found, settings) {  // faces.BlazeFaceDetector.detect: the square crop box and the eyes' angle
  const [x0, y0, x1, y1] = found.box;
  const side = (x1 - x0 + y1 - y0) / 2, crop = side * settings.box_scale;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2 + settings.box_shift * side;
  const [rx, ry, lx, ly] = found.keypoints;  // right eye (image left), left eye
  const angle = Math.atan2(ly - ry, lx - rx) * 180 / Math.PI, level = settings.align_min_deg;  // null: no levelling
  return { box: [cx - crop / 2, cy - crop / 2, crop, crop].map(Math.round),
           angle: level !== null && Math.abs(angle) >= level ? angle : 0 };
}

function views(gray, face, scheme, shift) {  // views.TestTime.views for one face x face (grey values 0-255)
  const mirrored = gray.map((_, i) => gray[i - (i % face) + face - 1 - (i % face)]);
  if (scheme === "plain") return [gray];
  if (scheme === "flip") return [gray, mirrored];
  const clamp = (v) => Math.min(face - 1, Math.max(0, v));
  return [gray, mirrored].flatMap((side) => CORNERS.map(([dy, dx]) => side.map((_, i) =>
    side[clamp(Math.floor(i / face) - dy * shift) * face + clamp((i % face) - dx * shift)])));
}

class BrowserLabeller {
  static async create(headers, testTime) {
    await loadScript(VENDOR + "ort.wasm.min.js");
    ort.env.wasm.wasmPaths = VENDOR;
    ort.env.wasm.numThreads = 1;  // threads need a cross-origin-isolated page; one thread labels a webcam's faces
    const [model, settings] = await Promise.all(["model", "settings"].map((name) => fetch(`/v1/browser/${name}`, { headers })));
    for (const answer of [model, settings]) if (!answer.ok) throw new Error((await answer.json()).error);
    const labeller = new BrowserLabeller();
    labeller.detector = await ort.InferenceSession.create(VENDOR + "blazeface.onnx");
    labeller.classifier = await ort.InferenceSession.create(new Uint8Array(await model.arrayBuffer()));
    labeller.testTime = testTime;
    labeller.settings = await settings.json();
    labeller.anchors = anchorCentres(labeller.settings);
    labeller.square = new OffscreenCanvas(labeller.settings.input_px, labeller.settings.input_px);
    labeller.crop = new OffscreenCanvas(labeller.settings.face_px, labeller.settings.face_px);
    return labeller;
  }

  async detect(video) {  // blazeface.BlazeFace.detect_region over the whole frame, at the detector's input size
    const { input_px: px, min_score: minScore, raw_score_limit: limit } = this.settings;
    const width = video.videoWidth, height = video.videoHeight, scale = px / Math.max(width, height);
    const w = Math.round(width * scale), h = Math.round(height * scale);
    const padX = Math.floor((px - w) / 2), padY = Math.floor((px - h) / 2);
    const ctx = this.square.getContext("2d", { willReadFrequently: true });
    ctx.fillStyle = "black";
    ctx.fillRect(0, 0, px, px);
    ctx.drawImage(video, padX, padY, w, h);
    const rgba = ctx.getImageData(0, 0, px, px).data, input = new Float32Array(px * px * 3);
    for (let i = 0; i < px * px; i++) {
      for (let c = 0; c < 3; c++) input[3 * i + c] = (rgba[4 * i + c] - 127.5) / 127.5;
    }
    const out = await this.detector.run({ [this.detector.inputNames[0]]: new ort.Tensor("float32", input, [1, px, px, 3]) });
    const raw = out.regressors.data, scores = out.classificators.data, found = [];
    const toFrame = (x, y) => [(x - padX) / scale, (y - padY) / scale];
    this.anchors.forEach(([ax, ay], i) => {
      const score = 1 / (1 + Math.exp(-Math.max(-limit, Math.min(limit, scores[i]))));
      if (score < minScore) return;
      const r = raw.subarray(16 * i, 16 * i + 16), cx = r[0] + ax, cy = r[1] + ay;
      found.push({ box: [...toFrame(cx - r[2] / 2, cy - r[3] / 2), ...toFrame(cx + r[2] / 2, cy + r[3] / 2)],
                   keypoints: [...toFrame(r[4] + ax, r[5] + ay), ...toFrame(r[6] + ax, r[7] + ay)], score });
    });
    return weightedNms(found, this.settings.nms_iou).map((d) => faceOf(d, this.settings))
      .sort((a, b) => b.box[2] - a.box[2]);
  }

  grayFace(video, face) {  // preprocess.crop_face: the box turned level about its centre, 48x48 grey
    const [x, y, w, h] = face.box, facePx = this.settings.face_px, ctx = this.crop.getContext("2d", { willReadFrequently: true });
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "black";
    ctx.fillRect(0, 0, facePx, facePx);
    ctx.imageSmoothingQuality = "high";
    ctx.translate(facePx / 2, facePx / 2);
    ctx.rotate(-face.angle * Math.PI / 180);
    ctx.scale(facePx / w, facePx / h);
    ctx.drawImage(video, -(x + w / 2), -(y + h / 2));
    const rgba = ctx.getImageData(0, 0, facePx, facePx).data, gray = new Float32Array(facePx * facePx);
    for (let i = 0; i < gray.length; i++) gray[i] = Math.round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]);
    return gray;
  }

  async label(video) {  // the records /v1/stream answers: box, label, confidence, probabilities
    const faces = await this.detect(video);
    if (!faces.length) return { faces: [] };
    const facePx = this.settings.face_px;
    const perFace = faces.map((face) => views(this.grayFace(video, face), facePx, this.testTime.scheme, this.testTime.shift_px));
    const count = perFace[0].length, batch = new Float32Array(faces.length * count * facePx * facePx);
    perFace.flat().forEach((view, k) => batch.set(view.map((v) => v / 255), k * facePx * facePx));
    const out = await this.classifier.run({ [this.classifier.inputNames[0]]:
      new ort.Tensor("float32", batch, [faces.length * count, facePx, facePx, 1]) });
    const probs = out[this.classifier.outputNames[0]].data, classes = EMOTIONS.length;
    return { faces: faces.map((face, f) => {
      const mean = EMOTIONS.map((_, c) => {
        let sum = 0;
        for (let v = 0; v < count; v++) sum += probs[(f * count + v) * classes + c];
        return sum / count;
      });
      const best = mean.indexOf(Math.max(...mean));
      return { box: face.box, label: EMOTIONS[best], confidence: mean[best],
               probs: Object.fromEntries(EMOTIONS.map((name, c) => [name, mean[c]])) };
    }) };
  }
}
