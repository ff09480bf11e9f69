# Round two (scripts/experiments.sh round2): two members trained long on the recipe the pilots chose on their
# validation scores (scripts/plans/pilots.sh: AdamW 62.8 % against SGD-Nesterov 57.8 % at 30 epochs; the moving
# average no better than the weights; crops even with the whole face, kept for the long schedule and their test-time
# windows), averaged into one ensemble with the shipped efficient model (another recipe: the pair efficient + r2-m1
# scored 69.45 % with flip against 68.10 % and 67.34 % alone), and a student of the shipped size distilled from it.
# About 9 CPU hours on the 2-core machine, over several sessions (every training resumes).
crops=(-S model.crop_px=44 -S model.crop_jitter_px=2 -S model.test_time=crops)
recipe=(-S train.epochs=150 "${crops[@]}")
experiment r2-m1 -S experiment=efficient "${recipe[@]}" -S seed=1
experiment r2-m2 -S experiment=efficient "${recipe[@]}" -S seed=2
step r2-export-m1 python -m stages.export_run "$(run_of r2-m1)" models/r2-m1
step r2-export-m2 python -m stages.export_run "$(run_of r2-m2)" models/r2-m2
# the members done, the rest runs on the code of the day (an ensemble of members that mirror faces differently runs
# flip; the validation split has its own seed; the student's recipe fits class offsets; the last experiment's files in
# the checkout, kept in its DVC experiment, are dropped); the log names the commit
step r2-code bash -c 'git reset -q --hard && git checkout -q --detach main && git log --oneline -1'
step r2-ensemble python -m stages.ensemble ensembles/round2 models/efficient models/r2-m1 models/r2-m2
# each member's temperature and class offsets fitted again on the faces it held out (its own split seed), then averaged:
# the shipped models/accurate (70.03 % against 69.30 % for ensembles/round2, its members as they were)
for member in efficient r2-m1 r2-m2; do
  step "r2-calibrate-$member" python -m stages.calibrate "models/$member" "ensembles/members/$member" --class-bias \
    --source "$FER2013_SOURCE"
done
step r2-accurate python -m stages.ensemble ensembles/accurate ensembles/members/efficient ensembles/members/r2-m1 \
  ensembles/members/r2-m2
# the student of the shipped size distilled from it: scripts/plans/student.sh (after the first try here, 100 epochs at
# about 220 s each with the three teachers in its step, was lost at epoch 59 with its checkpoints; its targets are now
# computed once)
