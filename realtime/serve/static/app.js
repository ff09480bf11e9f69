// The live page: webcam frames over the WebSocket /v1/stream, each answer drawn over the video as boxes, labels and
// the 7 probability bars. At most two frames are in flight; the server drops stale ones and says which frame each
// answer is for (index), so the page never waits for an answer that will not come.
"use strict";

const EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"];
const MAX_IN_FLIGHT = 2;
const PROTOCOL = "fer.v1", KEY_NEEDED = 4401;  // realtime/serve/access.py
const KEY_ITEM = "fer-serve-key";  // the key stays in this tab's session storage only
const JPEG_QUALITY = 0.85;

const $ = (id) => document.getElementById(id);
const video = $("video"), faces = $("faces"), message = $("message"), pauseButton = $("pause");
const canvas = document.createElement("canvas");
let socket = null, paused = false, sent = 0, answered = 0, lastAnswerAt = 0;
// server: frames go over the WebSocket; browser: labelled in this page (browser.js), nothing sent (?mode=browser)
let mode = new URLSearchParams(location.search).get("mode") === "browser" ? "browser" : "server";
let model = null, browserLabeller = null;
const answerTimes = [];

function showMessage(text) {
  message.textContent = text;
  message.hidden = !text;
}

function cameraError(err) {
  switch (err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera permission was refused: allow the camera for this page (the camera icon in the address bar), " +
        "then reload.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera found: connect a camera, then reload the page.";
    case "NotReadableError":
      return "The camera is in use by another program: close it, then reload the page.";
    default:
      return `The camera could not be opened (${err.name}: ${err.message}).`;
  }
}

function key() {
  return sessionStorage.getItem(KEY_ITEM);
}

function askForKey(refused) {
  showMessage(refused ? "The server refused this key: enter another." : "");
  $("key-form").hidden = false;
  $("key").value = "";
  $("key").focus();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
  $("key-form").hidden = true;
  showMessage("");
  showModel();
  connect();
});

function keyHeaders() {
  return key() ? { Authorization: `Bearer ${key()}` } : {};
}

async function showModel() {
  try {
    const response = await fetch("/v1/model", { headers: keyHeaders() });
    if (response.status === 401) {
      $("model").textContent = "model: needs a key";
      return;
    }
    model = await response.json();
    const parts = [model.name ? model.name + (model.version ? ` v${model.version}` : "") : `run ${model.run_id}`];
    if (model.test_accuracy != null) parts.push(`${(100 * model.test_accuracy).toFixed(1)} % test accuracy`);
    parts.push(model.backend);
    $("model").textContent = "model: " + parts.join(" · ");
  } catch (err) {
    $("model").textContent = "model: unknown (server not reachable)";
  }
}

function sendFrames() {
  while (!paused && socket && socket.readyState === WebSocket.OPEN && video.videoWidth &&
         sent - answered < MAX_IN_FLIGHT) {
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    sent += 1;
    canvas.toBlob((blob) => socket.readyState === WebSocket.OPEN && socket.send(blob), "image/jpeg", JPEG_QUALITY);
  }
}

function percent(value, total) {
  return `${(100 * value / total).toFixed(3)}%`;
}

function drawFace(face) {
  const [x, y, w, h] = face.box;
  const box = document.createElement("div");
  box.className = "face" + (x + w / 2 > video.videoWidth / 2 ? " right" : "");
  box.dataset.box = face.box.join(",");
  Object.assign(box.style, {
    left: percent(x, video.videoWidth), top: percent(y, video.videoHeight),
    width: percent(w, video.videoWidth), height: percent(h, video.videoHeight),
  });
  const label = document.createElement("div");
  label.className = "label";
  label.textContent = `${face.label} ${Math.round(100 * face.confidence)} %`;
  const bars = document.createElement("div");
  bars.className = "bars";
  for (const name of EMOTIONS) {
    const p = face.probs[name];
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.innerHTML = `<span class="name"></span><span class="track"><span class="fill"></span></span>` +
      `<span class="value"></span>`;
    bar.querySelector(".name").textContent = name;
    bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    bar.querySelector(".value").textContent = `${Math.round(100 * p)}`;
    bars.appendChild(bar);
  }
  box.append(label, bars);
  return box;
}

function showAnswer(answer) {
  faces.replaceChildren(...answer.faces.map(drawFace));
  const now = performance.now();  // frames per second: answers over the last 2 seconds
  answerTimes.push(now);
  while (now - answerTimes[0] > 2000) answerTimes.shift();
  if (answerTimes.length > 1) {
    $("fps").textContent = `${((answerTimes.length - 1) / ((now - answerTimes[0]) / 1000)).toFixed(1)} FPS`;
  }
}

function clearAnswers() {
  faces.replaceChildren();
  answerTimes.length = 0;
  $("fps").textContent = "";
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // a browser cannot set headers on a WebSocket: the key travels as a subprotocol the server reads, never echoes
  socket = new WebSocket(`${scheme}://${location.host}/v1/stream`, key() ? [PROTOCOL, `bearer.${key()}`] : [PROTOCOL]);
  sent = answered = 0;
  socket.onopen = () => {
    showMessage("");
    pauseButton.disabled = false;
    sendFrames();
  };
  socket.onmessage = (event) => {
    const answer = JSON.parse(event.data);
    if (answer.index !== undefined) answered = answer.index + 1;  // this frame and every older one: done or dropped
    lastAnswerAt = performance.now();
    if (answer.error) showMessage(`The server refused a frame: ${answer.error}`);
    else showAnswer(answer);
    sendFrames();
  };
  socket.onclose = (event) => {
    if (mode === "browser") return;  // closed on purpose: frames stay in this browser now
    pauseButton.disabled = true;
    clearAnswers();  // labels, boxes and FPS of a stream that is gone would pass for live ones
    if (event.code === KEY_NEEDED) {
      const refused = key() !== null;
      sessionStorage.removeItem(KEY_ITEM);
      askForKey(refused);
      return;
    }
    showMessage("Lost the connection to the server: reconnecting…");
    setTimeout(connect, 1000);
  };
}

async function labelInBrowser() {
  $("mode").textContent = "Label on the server";
  $("where").textContent = "labelled in this browser";
  if (socket) socket.close();
  clearAnswers();
  try {
    if (!model) await showModel();
    browserLabeller = browserLabeller || await BrowserLabeller.create(keyHeaders(), model.test_time);
  } catch (err) {
    showMessage(`The in-browser mode could not start: ${err.message}`);
    return;
  }
  pauseButton.disabled = false;
  while (mode === "browser") {
    if (!paused && video.videoWidth) showAnswer(await browserLabeller.label(video));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

$("mode").addEventListener("click", () => {
  mode = mode === "browser" ? "server" : "browser";
  clearAnswers();
  if (mode === "browser") {
    labelInBrowser();
  } else {
    $("mode").textContent = "Label in this browser";
    $("where").textContent = "labelled by the server";
    connect();
  }
});

pauseButton.addEventListener("click", () => {
  paused = !paused;
  pauseButton.textContent = paused ? "Resume" : "Pause";
  if (paused) {
    video.pause();
  } else {
    video.play();
    sendFrames();
  }
});

setInterval(() => {  // an answer that never came (a lost frame) must not stop the stream
  if (!paused && sent > answered && performance.now() - lastAnswerAt > 3000) {
    answered = sent;
    sendFrames();
  }
}, 1000);

async function start() {
  showModel();
  setInterval(showModel, 10000);  // the server may follow a new champion
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showMessage("This browser gives no camera to this page: open it as http://localhost:8000 (or over https), " +
      "where browsers allow cameras.");
    return;
  }
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (err) {
    showMessage(cameraError(err));
    return;
  }
  await video.play();
  lastAnswerAt = performance.now();
  if (mode === "browser") labelInBrowser();
  else connect();
}

start();
