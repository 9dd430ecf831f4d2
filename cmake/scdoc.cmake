# SPDX-License-Identifier: MIT
# cmake -DSCDOC=scdoc -DGZIP=gzip -DIN=page.scd -DOUT=dir/page.N -P scdoc.cmake
# Runs scdoc (it reads stdin and writes stdout) without a shell, then writes OUT.gz with
# `gzip -9n` (no name, no time stamp: the same input gives the same bytes). scdoc dates
# the page from SOURCE_DATE_EPOCH when it is set, so a package build can pin it.
get_filename_component(dir "${OUT}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
execute_process(COMMAND "${SCDOC}" INPUT_FILE "${IN}" OUTPUT_FILE "${OUT}.tmp"
                ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}.tmp")
  message(FATAL_ERROR "scdoc: ${IN}: ${err}")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
execute_process(COMMAND "${GZIP}" -9n -c "${OUT}" OUTPUT_FILE "${OUT}.gz" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}.gz")
  message(FATAL_ERROR "gzip: ${OUT} failed")
endif()
