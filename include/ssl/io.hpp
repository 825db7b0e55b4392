#pragma once
// Umbrella for ssl/io/ : safetensors, checkpoints, module weights, images.
#include "io/image.hpp"
#include "io/image_grid.hpp"
#include "io/safetensors.hpp"
#include "io/checkpoint.hpp"
#include "io/module_weights.hpp"
