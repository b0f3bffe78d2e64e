#include "python_bridge.h"

#include "robustlens/core/error.h"

#include <torch/csrc/autograd/python_variable.h>
#include <torch/csrc/utils/pybind.h>

#include <utility>

namespace py = pybind11;

namespace robustlens::python {
namespace {

bool is_module(const py::object& callable) {
  return py::isinstance(callable, py::module_::import("torch.nn").attr("Module"));
}

/// The device of the module's first parameter or buffer; `otherwise` for a function or a module without either.
at::Device device_of(const py::object& callable, bool module, const at::Device& otherwise) {
  if (!module) return otherwise;
  for (const char* tensors : {"parameters", "buffers"}) {
    for (const py::handle tensor : callable.attr(tensors)()) return tensor.cast<at::Tensor>().device();
  }
  return otherwise;
}

}  // namespace

void check_for_interrupt() {
  calling_python([] {
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  });
}

ProgressCallback python_progress(PyObject* callback) {
  return [callback](const ProgressUpdate& update) {
    const py::gil_scoped_acquire gil;
    check_for_interrupt();
    const py::handle show(callback);
    calling_python([&] { show(update.task, update.done, update.total, update.status); });
  };
}

InterruptibleModel::InterruptibleModel(std::unique_ptr<Model> inner) : inner_(std::move(inner)) {
  info_ = inner_->info();
}

at::Tensor InterruptibleModel::forward(const at::Tensor& images) {
  {
    const py::gil_scoped_acquire gil;
    check_for_interrupt();
  }
  return inner_->forward(images);
}

PythonModel::PythonModel(py::object callable, const at::Device& otherwise)
    : callable_(std::move(callable)),
      is_module_(is_module(callable_)),
      device_(device_of(callable_, is_module_, otherwise)) {
  RL_CHECK(PyCallable_Check(callable_.ptr()) != 0,
           "model: expected a torch.nn.Module or a function from images to logits, got ",
           py::str(py::type::of(callable_).attr("__name__")).cast<std::string>());
  info_.kind = is_module_ ? "python module" : "python function";
  if (!is_module_) return;
  for (const py::handle module : callable_.attr("modules")()) {
    modes_.emplace_back(py::reinterpret_borrow<py::object>(module), module.attr("training").cast<bool>());
  }
  calling_python([&] { return callable_.attr("train")(false); });
}

PythonModel::~PythonModel() {
  // Each submodule's own flag: train(True) would also wake the layers the caller had frozen in evaluation mode.
  for (const auto& [module, training] : modes_) {
    try {
      module.attr("training") = training;
    } catch (py::error_already_set& error) {
      error.discard_as_unraisable(__func__);
    }
  }
}

at::Tensor PythonModel::forward(const at::Tensor& images) {
  const py::gil_scoped_acquire gil;
  check_for_interrupt();
  const py::object output = calling_python([&] { return callable_(images); });
  RL_CHECK(THPVariable_Check(output.ptr()), "model must return a tensor of logits, got ",
           py::str(py::type::of(output).attr("__name__")).cast<std::string>());
  at::Tensor logits = output.cast<at::Tensor>();
  check_logits(logits, images.size(0), "model");
  return logits;
}

at::Tensor PythonModel::latent(const at::Tensor&) {
  throw Error("model: a Python model exposes no latent representation here");
}

void PythonModel::to(const at::Device& device) {
  RL_CHECK(device == device_, "model: robustlens does not move a Python model (it is on ", device_.str(), ", not ",
           device.str(), ")");
}

void PythonModel::set_training(bool training) {
  if (!is_module_) return;
  const py::gil_scoped_acquire gil;
  calling_python([&] { return callable_.attr("train")(training); });
}

std::vector<at::Tensor> PythonModel::parameters() {
  std::vector<at::Tensor> parameters;
  if (!is_module_) return parameters;
  const py::gil_scoped_acquire gil;
  for (const py::handle parameter : callable_.attr("parameters")()) parameters.push_back(parameter.cast<at::Tensor>());
  return parameters;
}

}  // namespace robustlens::python
