#pragma once
// Umbrella for ssl/encoders/ (filled in as components land).
#include "encoders/mlp.hpp"
#include "encoders/convnet_s.hpp"
#include "encoders/resnet.hpp"
#include "encoders/vit.hpp"
