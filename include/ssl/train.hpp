#pragma once
// Umbrella for ssl/train/: the training loop.
#include "train/trainer.hpp"
