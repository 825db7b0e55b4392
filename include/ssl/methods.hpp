#pragma once
// Umbrella for ssl/methods/: one class template per self-supervised method.
#include "methods/method.hpp"
#include "methods/simclr.hpp"
#include "methods/byol.hpp"
#include "methods/joint_embedding.hpp"
#include "methods/moco.hpp"
#include "methods/rotation.hpp"
#include "methods/jigsaw.hpp"
#include "methods/colorization.hpp"
#include "methods/triplet.hpp"
#include "methods/mae.hpp"
#include "methods/dino.hpp"
#include "methods/maskfeat.hpp"
