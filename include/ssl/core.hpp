#pragma once
// Umbrella: errors, counter-based RNG, threads.
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
