#include "cli/terminal.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>

namespace driftless::cli {

bool IsTerminal(FILE* f) { return isatty(fileno(f)) == 1; }

bool UseColor(FILE* f, bool no_color_flag) {
  if (no_color_flag) return false;
  const char* nc = std::getenv("NO_COLOR");
  if (nc != nullptr && *nc) return false;
  const char* term = std::getenv("TERM");
  if (term != nullptr && std::string(term) == "dumb") return false;
  return IsTerminal(f);
}

bool Confirm(const std::string& question) {
  std::fprintf(stderr, "%s\n  Only 'yes' will be accepted: ", question.c_str());
  std::fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "yes";
}

ProgressLine::ProgressLine(std::string verb)
    : verb_(std::move(verb)), enabled_(IsTerminal(stderr)) {}

ProgressLine::~ProgressLine() { Done(); }

void ProgressLine::Update(size_t done, size_t total, const std::string& what) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> g(mu_);
  auto now = std::chrono::steady_clock::now();
  if (done != total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  std::string line = verb_ + " " + std::to_string(done) + "/" + std::to_string(total) + " " + what;
  if (line.size() > 100) line = line.substr(0, 97) + "...";
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressLine::Done() {
  std::lock_guard<std::mutex> g(mu_);
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

}  // namespace driftless::cli
