"""heareval 2021.1.3's prediction runner with a fifth workaround, needed for event tasks on pytorch-lightning 1.9.

heareval keys the event postprocessing chosen at each validation by the epoch it ran in, then looks it up at
test time by the epoch of the restored checkpoint; pytorch-lightning >= 1.6 reports that epoch one higher, so
the lookup fails with a KeyError. This looks up the epoch before when the exact one is missing (validation
runs every 3rd epoch, so that is the validation the checkpoint was saved at).
"""

from heareval.predictions import task_predictions
from heareval.predictions.runner import runner

original = task_predictions.EventPredictionModel.epoch_best_postprocessing_or_default


def lookup(self, epoch):
    if self.use_scoring_for_early_stopping and epoch not in self.epoch_best_postprocessing:
        epoch -= 1
    return original(self, epoch)


task_predictions.EventPredictionModel.epoch_best_postprocessing_or_default = lookup

if __name__ == "__main__":
    runner()
