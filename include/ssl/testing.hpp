#pragma once
// Umbrella for ssl/testing/ (filled in as components land).
#include "testing/gradient_check.hpp"
