# For mllpConfig.cmake: how mllp::mllp_static's private dependencies are
# recreated for consumers. The static library's link interface names the
# imported targets this build used (PkgConfig::LIBURING, PkgConfig::JEMALLOC,
# PkgConfig::WOLFSSL, as far as they exist); MLLP_CONFIG_STATIC_DEPS becomes
# one _mllp_static_dep() call per target, with the absolute library files
# pkg-config found here. Included by the top-level CMakeLists.txt.
set(MLLP_CONFIG_STATIC_DEPS "")
foreach(_mllp_dep LIBURING JEMALLOC WOLFSSL)
  if(TARGET PkgConfig::${_mllp_dep})
    get_target_property(_mllp_libs PkgConfig::${_mllp_dep} INTERFACE_LINK_LIBRARIES)
    if(NOT _mllp_libs)
      set(_mllp_libs "")
    endif()
    string(TOLOWER ${_mllp_dep} _mllp_pc)
    string(APPEND MLLP_CONFIG_STATIC_DEPS
      "_mllp_static_dep(${_mllp_dep} ${_mllp_pc} \"${_mllp_libs}\")\n")
  endif()
endforeach()
