# Every dependency comes from a Debian package and is found through its own CMake config or module.
include(GNUInstallDirs)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(xtl REQUIRED)
find_package(xtensor REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(ZLIB REQUIRED)
find_package(OpenMP REQUIRED)
