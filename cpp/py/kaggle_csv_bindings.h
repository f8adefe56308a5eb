// Registers the Kaggle CSV reader's bindings on the _native module.
#pragma once

#include <pybind11/pybind11.h>

namespace fkd {
namespace py_face {

void register_kaggle_csv(pybind11::module_& m);

}  // namespace py_face
}  // namespace fkd
