# Round two's student (scripts/experiments.sh student): the efficient recipe on 44 px crops, distilled from the
# shipped ensemble models/accurate (which scripts/plans/round2.sh made), its targets computed once per face
# (conf/experiment/distill_ensemble.yaml: 120 epochs, about 50 s each on the 2-core machine). Then its folder.
experiment r2-student -S experiment=distill_ensemble
step r2-export-student python -m stages.export_run "$(run_of r2-student)" models/r2-student
