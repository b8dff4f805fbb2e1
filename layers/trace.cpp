#include "layers/trace.h"

#include "core/error.h"

namespace livernet::trace {

namespace {
thread_local Recorder* current = nullptr;
}

Recorder::Recorder() {
  LN_CHECK(!current, "trace: a Recorder is already recording on this thread");
  current = this;
}

Recorder::~Recorder() { current = nullptr; }

Recorder* active() { return current; }

}  // namespace livernet::trace
