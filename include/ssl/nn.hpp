#pragma once
// Umbrella for ssl/nn/: layers and composition.
#include "nn/module.hpp"
#include "nn/sequential.hpp"
