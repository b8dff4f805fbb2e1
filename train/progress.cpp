#include "train/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace livernet::train {

Progress::Progress(const std::string& log_path) : tty_(::isatty(STDERR_FILENO) == 1) {
  if (!log_path.empty()) log_.open(log_path, std::ios::app);
}

void Progress::line(const std::string& text) {
  if (bar_shown_) std::fprintf(stderr, "\r\033[K");
  bar_shown_ = false;
  std::fprintf(stderr, "%s%s\n", prefix_.c_str(), text.c_str());
  std::fflush(stderr);
  if (log_) log_ << text << "\n" << std::flush;
}

void Progress::update(double done, double total, const std::string& text) {
  if (!tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (bar_shown_ && now - last_ < std::chrono::milliseconds(100) && done < total) return;
  last_ = now;
  const int width = 24;
  const double frac = total > 0 ? std::min(1.0, done / total) : 0;
  const int fill = static_cast<int>(std::lround(frac * width));
  std::string bar(static_cast<std::size_t>(fill), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r\033[K%s[%s] %3.0f%% %s", prefix_.c_str(), bar.c_str(), 100 * frac, text.c_str());
  std::fflush(stderr);
  bar_shown_ = true;
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = std::lround(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

}  // namespace livernet::train
