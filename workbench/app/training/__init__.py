"""Tab 3, training: the hyperparameter form (`hyperparameters`), the run's progress from the engine's
events (`progress`: progress bar, status, curves, log lines), the log pane (`log`), the learning-rate finder
(`lr_finder`) and Training → Save configuration / train on a cluster (`cluster_dialog`). `panel` owns
them and runs one training session at a time.
"""
