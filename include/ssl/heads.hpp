#pragma once
// Umbrella for ssl/heads/: projection, prediction and DINO heads.
#include "heads/projection_mlp.hpp"
#include "heads/mae_decoder.hpp"
#include "heads/dino_head.hpp"
#include "heads/swav_prototypes.hpp"
#include "heads/ijepa_predictor.hpp"
