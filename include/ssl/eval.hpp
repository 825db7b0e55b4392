#pragma once
// Umbrella for ssl/eval/: measuring a frozen representation.
#include "eval/alignment_uniformity.hpp"
#include "eval/collapse_monitor.hpp"
#include "eval/knn.hpp"
#include "eval/labels.hpp"
#include "eval/lbfgs.hpp"
#include "eval/linear_probe.hpp"
#include "eval/features.hpp"
#include "eval/attention_maps.hpp"
