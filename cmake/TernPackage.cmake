# SPDX-License-Identifier: MIT
# What `cmake --install` adds besides the libraries, headers and programs (the example
# configuration, the systemd units), and the Debian package: `cpack` in the build folder
# (or `cmake --build <dir> --target package`) writes tern_<version>_<arch>.deb.
#
# One package, named tern, holds everything that is installed: the programs, libtern.so.0
# and libtern.a, the headers, tern.pc and the CMake package, the man pages, the example,
# the systemd units and their user (sysusers.d). Its prefix is /usr
# (CPACK_PACKAGING_INSTALL_PREFIX), whatever CMAKE_INSTALL_PREFIX says; the relative
# GNUInstallDirs paths are used under it.
#
# wolfSSL is not a dependency: tern's own build (.deps/wolfssl) is a static library, linked
# into libtern.so (its symbols hidden) and into the programs, which link libtern statically.
# The run-time dependencies (libc6, libev4, libck0, and whatever else the programs link)
# come from dpkg-shlibdeps; without it, from the list below.

# ---- the example configuration and the systemd units ----------------------------------------
# Not under CMAKE_INSTALL_LIBDIR: systemd looks in <prefix>/lib/systemd/system, never in
# Debian's lib/<multiarch>/.
set(TERN_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd units go, relative to the prefix")
set(TERN_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING
    "Where the units' system user (contrib/systemd/tern.sysusers.conf) goes, as tern.conf")
if(TERN_BUILD_APPS)
  install(FILES ${PROJECT_SOURCE_DIR}/contrib/tern-gateway.conf.example
          DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
  # A PSK file into the fleet's Redis store (a shell script: tern-psk-redis --help)
  install(PROGRAMS ${PROJECT_SOURCE_DIR}/contrib/tern-psk-redis
          DESTINATION ${CMAKE_INSTALL_DATADIR}/tern)
  # Units as they are (NAME.service, .socket, .timer), or templates (NAME.service.in:
  # @CMAKE_INSTALL_FULL_BINDIR@ and the other GNUInstallDirs paths filled in). Listed at
  # configure time; CONFIGURE_DEPENDS re-runs CMake when the folder changes.
  file(GLOB _tern_units CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/contrib/systemd/*.service ${PROJECT_SOURCE_DIR}/contrib/systemd/*.socket
       ${PROJECT_SOURCE_DIR}/contrib/systemd/*.timer)
  file(GLOB _tern_unit_templates CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/contrib/systemd/*.service.in
       ${PROJECT_SOURCE_DIR}/contrib/systemd/*.socket.in)
  foreach(t ${_tern_unit_templates})
    get_filename_component(name ${t} NAME)
    string(REGEX REPLACE "\\.in$" "" name ${name})
    configure_file(${t} ${PROJECT_BINARY_DIR}/systemd/${name} @ONLY)
    list(APPEND _tern_units ${PROJECT_BINARY_DIR}/systemd/${name})
  endforeach()
  if(_tern_units)
    install(FILES ${_tern_units} DESTINATION ${TERN_SYSTEMD_UNIT_DIR})
  endif()
  file(GLOB _tern_sysusers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/contrib/systemd/tern.sysusers.conf)
  if(_tern_sysusers)
    install(FILES ${_tern_sysusers} DESTINATION ${TERN_SYSUSERS_DIR} RENAME tern.conf)
  endif()
endif()

# ---- the Debian package ---------------------------------------------------------------------
set(TERN_DEB_MAINTAINER "tern maintainers <tern@localhost>" CACHE STRING
    "The Maintainer field of the .deb")

find_program(TERN_DPKG dpkg)
if(TERN_DPKG)
  execute_process(COMMAND ${TERN_DPKG} --print-architecture OUTPUT_VARIABLE _tern_deb_arch
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
if(NOT _tern_deb_arch)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64)$")
    set(_tern_deb_arch amd64)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64)$")
    set(_tern_deb_arch arm64)
  else()
    set(_tern_deb_arch ${CMAKE_SYSTEM_PROCESSOR})
  endif()
endif()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tern)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR tern)
set(CPACK_PACKAGE_CONTACT "${TERN_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "multi-threaded TLS runtime and TLS-PSK gateway")
set(CPACK_PACKAGE_DESCRIPTION
    "libtern serves TLS at scale: one libev reactor per thread, lock-free hand-offs, TLS "
    "from wolfSSL (linked in). The package holds the library (shared and static, headers, "
    "pkg-config and CMake files) and its programs: tern-gateway, a TLS-PSK gateway that "
    "forwards devices to a TCP backend (an MQTT broker), tern-echo, a TLS echo server, and "
    "tern-bench, a TLS load generator.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${TERN_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${_tern_deb_arch})
set(CPACK_DEBIAN_FILE_NAME "tern_${PROJECT_VERSION}_${_tern_deb_arch}.deb")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Debian 12's names, for a machine without dpkg-shlibdeps (CPack then takes this list alone)
find_program(TERN_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(NOT TERN_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libev4, libck0")
endif()
# The maintainer scripts: ldconfig (CPack would add only that), the units' user with
# systemd-sysusers, systemctl daemon-reload. Written with the package's paths.
set(TERN_DEB_SYSUSERS_FILE "${CPACK_PACKAGING_INSTALL_PREFIX}/${TERN_SYSUSERS_DIR}/tern.conf")
foreach(script postinst postrm)
  configure_file(${PROJECT_SOURCE_DIR}/cmake/deb/${script}.in ${PROJECT_BINARY_DIR}/deb/${script}
                 @ONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                 GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  list(APPEND CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/deb/${script})
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Keep the staging folder and the package out of the source tree's way: <build>/package
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)
set(CPACK_OUTPUT_CONFIG_FILE ${PROJECT_BINARY_DIR}/CPackConfig.cmake)
include(CPack)
