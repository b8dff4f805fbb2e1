// Progress reporting for long jobs: a live bar with ETA and images/s on a terminal, plain lines when
// standard error is not a terminal (logs, CI). Everything printed also goes to an optional log file.
#pragma once

#include <chrono>
#include <fstream>
#include <string>
#include <utility>

namespace livernet::train {

class Progress {
 public:
  explicit Progress(const std::string& log_path = "");
  // A line of text (ends any live bar first).
  void line(const std::string& text);
  // Live status: `done` of `total` units, with free text.
  void update(double done, double total, const std::string& text);
  bool tty() const { return tty_; }
  // Put before every line and status on the terminal (e.g. "process 1: " in a multi-process job).
  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }

 private:
  bool tty_;
  std::string prefix_;
  bool bar_shown_ = false;
  std::ofstream log_;
  std::chrono::steady_clock::time_point last_;
};

std::string format_duration(double seconds);

}  // namespace livernet::train
