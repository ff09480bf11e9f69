# Round-two pilots (scripts/experiments.sh pilots): the efficient recipe for 30 epochs with random crops, EMA and
# SGD, each against r2-base.
base=(-S experiment=efficient -S train.epochs=30)
crops=(-S model.crop_px=44 -S model.crop_jitter_px=2)
experiment r2-base "${base[@]}"
experiment r2-crop44 "${base[@]}" "${crops[@]}"
# EMA only shadows the weights (the raw ones train as without it), so an EMA run scores both: SGD's answers AdamW
# against r2-crop44, and EMA against raw weights
experiment r2-crop44-ema-sgd "${base[@]}" "${crops[@]}" -S train.ema=true -S train.optimizer=sgd -S train.lr=0.02 \
  -S train.weight_decay=0.0005
experiment r2-crop44-ema "${base[@]}" "${crops[@]}" -S train.ema=true
