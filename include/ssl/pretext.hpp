#pragma once
// Umbrella for ssl/pretext/: label generators of the classic pretext tasks
// (rotation prediction, jigsaw puzzles, colorization).
#include "pretext/block_mask.hpp"
#include "pretext/multiblock_mask.hpp"
#include "pretext/unit_mask.hpp"
#include "pretext/colorization.hpp"
#include "pretext/jigsaw.hpp"
#include "pretext/rotation.hpp"
#include "pretext/hog.hpp"
