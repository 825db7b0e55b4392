#pragma once
// Umbrella for ssl/io/ (filled in as components land).
#include "io/image.hpp"
#include "io/image_grid.hpp"
#include "io/safetensors.hpp"
#include "io/checkpoint.hpp"
