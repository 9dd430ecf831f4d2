# SPDX-License-Identifier: MIT
# The man pages: docs/man/NAME.SECTION.scd -> <build>/man/NAME.SECTION with scdoc(1), and a
# gzip'd copy (NAME.SECTION.gz, what Debian installs) beside it. The `man` target builds them
# and is part of ALL when scdoc is there. TERN_BUILD_MAN: AUTO (build them when scdoc is
# found), ON (scdoc required), OFF (no man pages, none installed).

set(TERN_BUILD_MAN AUTO CACHE STRING "Build and install the man pages with scdoc: AUTO, ON or OFF")
set_property(CACHE TERN_BUILD_MAN PROPERTY STRINGS AUTO ON OFF)

set(TERN_MAN_PAGES tern-gateway.8 tern-gateway.conf.5 tern-echo.1 tern-bench.1)
set(TERN_MAN_DIR ${PROJECT_BINARY_DIR}/man)
set(TERN_MAN_BUILT OFF)

if(TERN_BUILD_MAN STREQUAL "AUTO" OR TERN_BUILD_MAN)
  find_program(TERN_SCDOC scdoc)
  find_program(TERN_GZIP gzip)
  if(NOT TERN_SCDOC OR NOT TERN_GZIP OR NOT EXISTS "${TERN_SCDOC}")
    if(TERN_BUILD_MAN STREQUAL "AUTO")
      message(STATUS "tern: scdoc or gzip not found: no man pages (apt-get install scdoc)")
    else()
      message(FATAL_ERROR "tern: TERN_BUILD_MAN=ON needs scdoc and gzip (apt-get install scdoc)")
    endif()
  else()
    set(TERN_MAN_BUILT ON)
  endif()
endif()

if(TERN_MAN_BUILT)
  set(_tern_man_outputs "")
  foreach(page ${TERN_MAN_PAGES})
    set(src ${PROJECT_SOURCE_DIR}/docs/man/${page}.scd)
    add_custom_command(
      OUTPUT ${TERN_MAN_DIR}/${page} ${TERN_MAN_DIR}/${page}.gz
      COMMAND ${CMAKE_COMMAND} -DSCDOC=${TERN_SCDOC} -DGZIP=${TERN_GZIP} -DIN=${src}
              -DOUT=${TERN_MAN_DIR}/${page} -P ${PROJECT_SOURCE_DIR}/cmake/scdoc.cmake
      DEPENDS ${src} ${PROJECT_SOURCE_DIR}/cmake/scdoc.cmake
      COMMENT "scdoc: man/${page}"
      VERBATIM)
    list(APPEND _tern_man_outputs ${TERN_MAN_DIR}/${page} ${TERN_MAN_DIR}/${page}.gz)
    string(REGEX MATCH "[0-9]+$" section ${page})
    install(FILES ${TERN_MAN_DIR}/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${_tern_man_outputs})
endif()
