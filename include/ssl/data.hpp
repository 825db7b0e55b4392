#pragma once
// Umbrella for ssl/data/: datasets (IDX: MNIST/Fashion-MNIST, CIFAR-10/100, image folders)
// and the threaded loader.
#include "data/bytes.hpp"
#include "data/gzip.hpp"
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "data/mnist.hpp"
#include "data/cifar.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"
