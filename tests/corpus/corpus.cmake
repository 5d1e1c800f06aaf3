# The HL7 test corpus, written at configure time by gen_corpus.py into
# ${PROJECT_BINARY_DIR}/corpus (the default MLLP_CORPUS_DIR), and re-written
# when the generator changes. A corpus given in MLLP_CORPUS_DIR is used as
# it is. MLLP_EXTRA_CORPUS_DIR, when set, must have the same layout.
set(_mllp_gen_corpus ${CMAKE_CURRENT_LIST_DIR}/gen_corpus.py)
set(_mllp_own_corpus ${PROJECT_BINARY_DIR}/corpus)

if(MLLP_CORPUS_DIR STREQUAL _mllp_own_corpus)
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(NOT Python3_Interpreter_FOUND)
    message(FATAL_ERROR "python3 not found: the tests and benchmarks need it "
      "to generate their HL7 corpus (tests/corpus/gen_corpus.py). Install "
      "Debian's package python3 (apt-get install python3), or configure with "
      "-DMLLP_BUILD_TESTS=OFF -DMLLP_BUILD_BENCH=OFF.")
  endif()
  execute_process(
    COMMAND ${Python3_EXECUTABLE} ${_mllp_gen_corpus} ${_mllp_own_corpus}
    RESULT_VARIABLE _mllp_rc ERROR_VARIABLE _mllp_err)
  if(NOT _mllp_rc EQUAL 0)
    message(FATAL_ERROR "tests/corpus/gen_corpus.py failed (${_mllp_rc}): ${_mllp_err}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY
    CMAKE_CONFIGURE_DEPENDS ${_mllp_gen_corpus})
endif()

if(NOT EXISTS "${MLLP_CORPUS_DIR}/vectors.tsv")
  message(FATAL_ERROR "HL7 corpus not found at ${MLLP_CORPUS_DIR} (no vectors.tsv); "
    "leave MLLP_CORPUS_DIR at its default (${_mllp_own_corpus}) for the generated one")
endif()
if(MLLP_EXTRA_CORPUS_DIR AND NOT EXISTS "${MLLP_EXTRA_CORPUS_DIR}/vectors.tsv")
  message(FATAL_ERROR "MLLP_EXTRA_CORPUS_DIR=${MLLP_EXTRA_CORPUS_DIR} has no vectors.tsv "
    "(want messages/, acks/, vectors.tsv as in ${MLLP_CORPUS_DIR})")
endif()
