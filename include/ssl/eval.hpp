#pragma once
// Umbrella for ssl/eval/: measuring a representation (frozen: k-NN, linear probe; end to end: fine-tuning).
#include "eval/alignment_uniformity.hpp"
#include "eval/collapse_monitor.hpp"
#include "eval/fine_tune.hpp"
#include "eval/knn.hpp"
#include "eval/label_subset.hpp"
#include "eval/labels.hpp"
#include "eval/lbfgs.hpp"
#include "eval/linear_probe.hpp"
#include "eval/features.hpp"
#include "eval/attention_maps.hpp"
#include "eval/view_alignment.hpp"
