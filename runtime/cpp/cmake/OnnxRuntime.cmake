# onnxruntime::onnxruntime from the wheel's library and separately fetched headers.
#
# The wheel ships libonnxruntime.so.1.<minor>.<patch> only; its soname is libonnxruntime.so.1, so
# the build links through symlinks of that name (and libonnxruntime.so) in the build tree, and
# the binaries find it there through their RPATH.
if(NOT EXISTS "${ORT_INCLUDE_DIR}/onnxruntime_cxx_api.h")
  message(FATAL_ERROR "ORT_INCLUDE_DIR='${ORT_INCLUDE_DIR}' has no onnxruntime_cxx_api.h; "
                      "run scripts/fetch-ort-headers.sh DIR and pass -DORT_INCLUDE_DIR=DIR")
endif()
file(GLOB _ort_libs "${ORT_LIB_DIR}/libonnxruntime.so.1.*")
list(LENGTH _ort_libs _ort_count)
if(NOT _ort_count EQUAL 1)
  message(FATAL_ERROR "ORT_LIB_DIR='${ORT_LIB_DIR}' should hold exactly one libonnxruntime.so.1.*"
                      " (the onnxruntime wheel's capi/ folder); found ${_ort_count}")
endif()
list(GET _ort_libs 0 _ort_lib)

# The C API is versioned by ONNX Runtime's minor version: headers newer than the library would
# ask it for an API table it does not have.
file(STRINGS "${ORT_INCLUDE_DIR}/onnxruntime_c_api.h" _api_line REGEX "^#define ORT_API_VERSION [0-9]+")
string(REGEX MATCH "[0-9]+$" ORT_HEADER_API_VERSION "${_api_line}")
string(REGEX MATCH "libonnxruntime\\.so\\.1\\.([0-9]+)\\.[0-9]+$" _m "${_ort_lib}")
set(ORT_LIBRARY_API_VERSION "${CMAKE_MATCH_1}")
if(NOT ORT_HEADER_API_VERSION OR NOT ORT_LIBRARY_API_VERSION)
  message(FATAL_ERROR "cannot read the API version of ${ORT_INCLUDE_DIR} or ${_ort_lib}")
endif()
if(ORT_HEADER_API_VERSION GREATER ORT_LIBRARY_API_VERSION)
  message(FATAL_ERROR "ONNX Runtime headers declare API version ${ORT_HEADER_API_VERSION}, newer "
                      "than the library's ${ORT_LIBRARY_API_VERSION} (${_ort_lib}): use older headers")
endif()
message(STATUS "edgert: ONNX Runtime ${_ort_lib} (API ${ORT_LIBRARY_API_VERSION}), "
               "headers API ${ORT_HEADER_API_VERSION}")

set(ORT_LINK_DIR "${CMAKE_BINARY_DIR}/onnxruntime-lib")
file(MAKE_DIRECTORY "${ORT_LINK_DIR}")
file(CREATE_LINK "${_ort_lib}" "${ORT_LINK_DIR}/libonnxruntime.so.1" SYMBOLIC)
file(CREATE_LINK "${_ort_lib}" "${ORT_LINK_DIR}/libonnxruntime.so" SYMBOLIC)

add_library(onnxruntime::onnxruntime SHARED IMPORTED GLOBAL)
set_target_properties(onnxruntime::onnxruntime PROPERTIES
  IMPORTED_LOCATION "${ORT_LINK_DIR}/libonnxruntime.so.1"
  IMPORTED_SONAME "libonnxruntime.so.1"
  INTERFACE_INCLUDE_DIRECTORIES "${ORT_INCLUDE_DIR}"
  # Every unit checks the API table itself instead of dereferencing a null one at start-up.
  INTERFACE_COMPILE_DEFINITIONS "ORT_API_MANUAL_INIT;EDGERT_ORT_HEADER_API=${ORT_HEADER_API_VERSION}")
set(CMAKE_BUILD_RPATH "${ORT_LINK_DIR}")
