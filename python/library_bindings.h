// The library's attacks and attributions as functions of the _robustlens module (library_bindings.cpp).
#pragma once

#include <pybind11/pybind11.h>

namespace robustlens::python {

void bind_library(pybind11::module_& module);

}  // namespace robustlens::python
