#include "layers/module.h"

namespace livernet {

namespace {
std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}
}  // namespace

std::vector<Module::Named> Module::named(NamedList Module::*list, const std::string& prefix) {
  std::vector<Named> out;
  for (auto& [n, t] : this->*list) out.push_back({join(prefix, n), t});
  for (auto& [n, c] : children_) {
    auto sub = c->named(list, join(prefix, n));
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<Module::Named> Module::named_parameters(const std::string& prefix) { return named(&Module::params_, prefix); }
std::vector<Module::Named> Module::named_buffers(const std::string& prefix) { return named(&Module::buffers_, prefix); }

std::vector<Module::Named> Module::named_state(const std::string& prefix) {
  std::vector<Named> out = named_parameters(prefix);
  std::vector<Named> b = named_buffers(prefix);
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<Tensor*> Module::parameters() {
  std::vector<Tensor*> out;
  for (auto& n : named_parameters()) out.push_back(n.tensor);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules(const std::string& prefix) {
  std::vector<std::pair<std::string, Module*>> out{{prefix, this}};
  for (auto& [n, c] : children_) {
    auto sub = c->named_modules(join(prefix, n));
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

Module* Module::find(const std::string& path) {
  if (path.empty()) return this;
  const auto dot = path.find('.');
  const std::string head = path.substr(0, dot);
  for (auto& [n, c] : children_)
    if (n == head) return dot == std::string::npos ? c.get() : c->find(path.substr(dot + 1));
  return nullptr;
}

std::int64_t Module::num_parameters() {
  std::int64_t n = 0;
  for (auto& p : named_parameters()) n += p.tensor->numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::set_frozen(bool frozen) {
  frozen_ = frozen;
  for (auto& [n, t] : params_) t->requires_grad_(!frozen);
  for (auto& [n, c] : children_) c->set_frozen(frozen);
}

void Module::zero_grad() {
  for (auto& p : named_parameters()) p.tensor->set_grad(Tensor());
}

void Module::to(Device device) {
  for (auto& [n, t] : params_) {
    if (t->device() == device) continue;
    const bool rg = t->requires_grad();
    *t = t->to(device);
    t->requires_grad_(rg);
  }
  for (auto& [n, t] : buffers_)
    if (t->defined() && !(t->device() == device)) *t = t->to(device);
  for (auto& [n, c] : children_) c->to(device);
}

void Module::register_parameter(const std::string& name, Tensor* t) {
  LN_CHECK(t && t->defined(), type_name_, ": parameter '", name, "' is undefined");
  LN_CHECK(t->is_leaf(), type_name_, ": parameter '", name, "' must be a leaf tensor");
  t->requires_grad_(true);
  params_.emplace_back(name, t);
}

void Module::register_buffer(const std::string& name, Tensor* t) {
  LN_CHECK(t && t->defined(), type_name_, ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
}

}  // namespace livernet
