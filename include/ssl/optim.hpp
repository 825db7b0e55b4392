#pragma once
// Umbrella for ssl/optim/: optimizers (sgd, adamw, lars), parameter groups (layer-wise lr decay), schedules,
// EMA teachers and gradient clipping.
#include "optim/adamw.hpp"
#include "optim/clip_grad.hpp"
#include "optim/ema.hpp"
#include "optim/lars.hpp"
#include "optim/layer_decay.hpp"
#include "optim/optimizer.hpp"
#include "optim/param_group.hpp"
#include "optim/schedule.hpp"
#include "optim/sgd.hpp"
