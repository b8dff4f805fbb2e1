// Module: the base of every layer and model. A module owns named parameters (leaf tensors that
// require grad), named buffers (state that is saved but not trained, e.g. BN running statistics) and
// named child modules; names compose into stable dotted paths ("Mixed_5b.branch1x1.conv.weight").
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace livernet {

class Module {
 public:
  using Named = NamedTensor;

  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
  const std::string& type_name() const { return type_name_; }

  // Recursive, in registration order, with dotted names under `prefix`.
  std::vector<Named> named_parameters(const std::string& prefix = "");
  std::vector<Named> named_buffers(const std::string& prefix = "");
  // Parameters followed by buffers: everything a weight file holds.
  std::vector<Named> named_state(const std::string& prefix = "");
  std::vector<Tensor*> parameters();
  // This module and every descendant with its dotted path ("" for this one).
  std::vector<std::pair<std::string, Module*>> named_modules(const std::string& prefix = "");
  // The descendant at a dotted path, or nullptr.
  Module* find(const std::string& path);
  std::int64_t num_parameters();

  // Training mode (recursive). Layers read training() to pick their behaviour.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }
  // Freezing (recursive): parameters stop requiring grad and batch norm uses its running statistics
  // even in training mode, as fine-tuning schedules expect.
  void set_frozen(bool frozen);
  bool frozen() const { return frozen_; }

  void zero_grad();
  // Moves parameters and buffers to `device` (parameters stay leaves that require grad).
  void to(Device device);

 protected:
  // Registers a member tensor. Parameters are made leaves that require grad.
  void register_parameter(const std::string& name, Tensor* t);
  void register_buffer(const std::string& name, Tensor* t);
  template <typename M>
  M* register_module(const std::string& name, std::shared_ptr<M> m) {
    M* raw = m.get();
    children_.emplace_back(name, std::move(m));
    return raw;
  }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

 private:
  using NamedList = std::vector<std::pair<std::string, Tensor*>>;
  // The tensors of `list` (params_ or buffers_) here and in every child, with dotted names.
  std::vector<Named> named(NamedList Module::*list, const std::string& prefix);

  std::string type_name_;
  NamedList params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  bool frozen_ = false;
};

}  // namespace livernet
