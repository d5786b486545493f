# cmake --install, plus an exported package: find_package(cpdiff) + cpdiff::cpdiff in another project.
include(CMakePackageConfigHelpers)
install(DIRECTORY include/cpdiff DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS cpdiff EXPORT cpdiffTargets)
install(EXPORT cpdiffTargets NAMESPACE cpdiff:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpdiff)
configure_package_config_file(cmake/cpdiffConfig.cmake.in ${PROJECT_BINARY_DIR}/cpdiffConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpdiff)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cpdiffConfigVersion.cmake COMPATIBILITY SameMinorVersion
                                 ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/cpdiffConfig.cmake ${PROJECT_BINARY_DIR}/cpdiffConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/cpdiff_cuda_target.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/cpdiff)
