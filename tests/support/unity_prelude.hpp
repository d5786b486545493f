#pragma once
// Everything the CPU test files include, included once at global scope before a unity translation unit
// (tests/CMakeLists.txt) wraps each test file in a namespace of its own: the files' own #include lines then
// find their headers already included, and each file's helpers (fixture(), tiny_unet, ...) stay apart.
#include <catch2/catch.hpp>
#include <csignal>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <ratio>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Dense>
#include <nlohmann/json.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xnpy.hpp>
#include <xtensor/xview.hpp>

#include "cpdiff/cpdiff.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/npy_xtensor.hpp"
#include "cpdiff/report/charts.hpp"
#include "cpdiff/train/batching.hpp"
#include "cpdiff/train/conditioning.hpp"

#include "io/io_test_util.hpp"
#include "optim/optim_fixture.hpp"
#include "report/png_reader.hpp"
#include "support/denoiser_checks.hpp"
#include "support/file_size_limit.hpp"
#include "support/fixtures.hpp"
#include "support/gradcheck.hpp"
#include "support/omp_threads.hpp"
#include "support/parity.hpp"
#include "train/train_fixture.hpp"
