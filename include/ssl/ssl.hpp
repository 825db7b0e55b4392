#pragma once
// ssl: self-supervised visual representation learning, header-only C++20.
// One include for everything; each folder also has its own umbrella (ssl/losses.hpp ...).
#include "version.hpp"
#include "core.hpp"
#include "tensor.hpp"
#include "nn.hpp"
#include "encoders.hpp"
#include "heads.hpp"
#include "losses.hpp"
#include "optim.hpp"
#include "augment.hpp"
#include "pretext.hpp"
#include "data.hpp"
#include "eval.hpp"
#include "io.hpp"
#include "train.hpp"
#include "methods.hpp"
#include "testing.hpp"
