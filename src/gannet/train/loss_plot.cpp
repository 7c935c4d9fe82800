#include "gannet/train/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::train {

namespace {
// A number of a metrics line: `absent` when the key is missing; null (how a NaN loss is written)
// reads as NaN. Another type is an error naming the line and the key, not a JSON library's.
double number_of(const nlohmann::json& j, const char* key, double absent, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return absent;
  if (it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  GANNET_CHECK(it->is_number(), where, ": '", key, "' is not a number");
  return it->get<double>();
}

bool flag_of(const nlohmann::json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  GANNET_CHECK(it->is_boolean(), where, ": '", key, "' is not a boolean");
  return it->get<bool>();
}
}  // namespace

RunLog read_run_log(const std::string& path, const std::string& label) {
  std::istringstream in(read_file(path));  // read_file refuses a FIFO or directory at once
  RunLog r;
  r.label = label;
  std::string line;
  int64_t n = 0;
  double ema = 0;
  bool final_seen = false;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    const std::string where = str(path, ":", n);
    GANNET_CHECK(j.is_object() && j.contains("step"), where, ": not a metrics line");
    const double step = number_of(j, "step", 0, where);
    GANNET_CHECK(std::isfinite(step) && step >= 0, where, ": 'step' is not a step number");
    RunLog::Point p{step, number_of(j, "tokens", 0, where), number_of(j, "layer_tokens", 0, where),
                    number_of(j, "train_s", number_of(j, "elapsed_s", 0, where), where), 0};
    const bool final_line = flag_of(j, "final", where);
    // A resumed run repeats the steps after its checkpoint: keep the later record.
    auto& series = j.contains("val_loss") ? r.val : r.train;
    while (!series.empty() && series.back().step >= p.step) series.pop_back();
    if (j.contains("val_loss")) {
      p.loss = number_of(j, "val_loss", 0, where);
      r.val.push_back(p);
      if (!final_seen || final_line) r.final_val_loss = p.loss;
      final_seen = final_seen || final_line;
    } else if (j.contains("loss")) {
      double l = number_of(j, "loss", 0, where);
      if (!std::isfinite(l)) continue;  // a diverged step (logged as null) would poison the average
      ema = r.train.empty() ? l : 0.95 * ema + 0.05 * l;
      p.loss = ema;
      r.train.push_back(p);
    }
  }
  GANNET_CHECK(!r.val.empty(), path, ": no validation loss in the log");
  return r;
}

Reached first_reaching(const RunLog& run, double target) {
  Reached out;
  for (size_t i = 0; i < run.val.size(); ++i) {
    const auto& b = run.val[i];
    if (b.loss > target) continue;
    out.reached = true;
    if (i == 0) {
      out.tokens = b.tokens, out.layer_tokens = b.layer_tokens, out.seconds = b.seconds, out.step = b.step;
      return out;
    }
    const auto& a = run.val[i - 1];
    const double f = (a.loss - target) / (a.loss - b.loss);
    auto lerp = [f](double x, double y) { return x + f * (y - x); };
    out.tokens = lerp(a.tokens, b.tokens), out.layer_tokens = lerp(a.layer_tokens, b.layer_tokens);
    out.seconds = lerp(a.seconds, b.seconds), out.step = lerp(a.step, b.step);
    return out;
  }
  return out;
}

namespace {
const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

double nice_step(double range) {
  double raw = range / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag) return m * mag;
  return 10 * mag;
}

std::string num(double v) {
  char buf[32];
  double a = std::fabs(v);
  if (a >= 1e9) std::snprintf(buf, sizeof buf, "%.3gG", v / 1e9);
  else if (a >= 1e6) std::snprintf(buf, sizeof buf, "%.3gM", v / 1e6);
  else if (a >= 1e3) std::snprintf(buf, sizeof buf, "%.3gk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}
}  // namespace

void write_loss_plot(const std::vector<RunLog>& runs, double target, const std::string& path) {
  GANNET_CHECK(!runs.empty(), "plot: no runs");
  const double W = 460, H = 340, ml = 60, mt = 40, mb = 50, gap = 40;
  const double total_w = 3 * (ml + W) + 2 * gap + 30, total_h = mt + H + mb + 30 + 22 * (double)runs.size();
  double ylo = std::numeric_limits<double>::max(), yhi = -ylo;
  for (const auto& r : runs)
    for (const auto* s : {&r.val, &r.train})
      for (size_t i = s == &r.train ? s->size() / 10 : 0; i < s->size(); ++i)  // skip the first train losses
        ylo = std::min(ylo, (*s)[i].loss), yhi = std::max(yhi, (*s)[i].loss);
  if (target > 0) ylo = std::min(ylo, target), yhi = std::max(yhi, target);
  if (yhi <= ylo) yhi = ylo + 1;
  const double pad = 0.05 * (yhi - ylo);
  ylo -= pad, yhi += pad;

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << total_w << "\" height=\"" << total_h
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  const char* titles[] = {"tokens", "layer-tokens", "training seconds"};
  for (int panel = 0; panel < 3; ++panel) {
    auto xof = [panel](const RunLog::Point& p) {
      return panel == 0 ? p.tokens : panel == 1 ? p.layer_tokens : p.seconds;
    };
    double xhi = 0;
    for (const auto& r : runs)
      for (const auto* s : {&r.val, &r.train})
        for (const auto& p : *s) xhi = std::max(xhi, xof(p));
    if (xhi <= 0) xhi = 1;
    const double x0 = 10 + panel * (ml + W + gap) + ml, y0 = mt;
    auto X = [&](double v) { return x0 + W * v / xhi; };
    auto Y = [&](double v) { return y0 + H * (1 - (v - ylo) / (yhi - ylo)); };
    o << "<text x=\"" << x0 + W / 2 << "\" y=\"" << y0 - 12 << "\" text-anchor=\"middle\" font-size=\"14\">loss vs "
      << titles[panel] << "</text>\n";
    o << "<rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << W << "\" height=\"" << H
      << "\" fill=\"none\" stroke=\"#333\"/>\n";
    for (double t = 0, st = nice_step(xhi); t <= xhi * 1.0001; t += st)
      o << "<line x1=\"" << X(t) << "\" x2=\"" << X(t) << "\" y1=\"" << y0 << "\" y2=\"" << y0 + H
        << "\" stroke=\"#eee\"/><text x=\"" << X(t) << "\" y=\"" << y0 + H + 16 << "\" text-anchor=\"middle\">"
        << num(t) << "</text>\n";
    for (double st = nice_step(yhi - ylo), t = std::ceil(ylo / st) * st; t <= yhi; t += st)
      o << "<line x1=\"" << x0 << "\" x2=\"" << x0 + W << "\" y1=\"" << Y(t) << "\" y2=\"" << Y(t)
        << "\" stroke=\"#eee\"/><text x=\"" << x0 - 6 << "\" y=\"" << Y(t) + 4 << "\" text-anchor=\"end\">" << num(t)
        << "</text>\n";
    o << "<text x=\"" << x0 + W / 2 << "\" y=\"" << y0 + H + 36 << "\" text-anchor=\"middle\">" << titles[panel]
      << "</text>\n";
    if (target > 0)
      o << "<line x1=\"" << x0 << "\" x2=\"" << x0 + W << "\" y1=\"" << Y(target) << "\" y2=\"" << Y(target)
        << "\" stroke=\"#555\" stroke-dasharray=\"5,4\"/>\n";
    for (size_t k = 0; k < runs.size(); ++k) {
      const char* c = kColors[k % 8];
      for (const auto* s : {&runs[k].train, &runs[k].val}) {
        const bool val = s == &runs[k].val;
        o << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"" << (val ? 2 : 1)
          << "\" stroke-opacity=\"" << (val ? 1.0 : 0.35) << "\" points=\"";
        for (const auto& p : *s)
          if (p.loss >= ylo && p.loss <= yhi) o << X(xof(p)) << "," << Y(p.loss) << " ";
        o << "\"/>\n";
        if (val)
          for (const auto& p : *s)
            o << "<circle cx=\"" << X(xof(p)) << "\" cy=\"" << Y(std::clamp(p.loss, ylo, yhi)) << "\" r=\"2.5\" fill=\""
              << c << "\"/>\n";
      }
    }
  }
  double ly = mt + H + mb + 20;
  o << "<text x=\"" << 10 + ml << "\" y=\"" << ly << "\">thick: validation loss; thin: training loss (EMA 0.95)"
    << (target > 0 ? "; dashed: target " + num(target) : "") << "</text>\n";
  for (size_t k = 0; k < runs.size(); ++k) {
    ly += 20;
    o << "<rect x=\"" << 10 + ml << "\" y=\"" << ly - 10 << "\" width=\"14\" height=\"4\" fill=\"" << kColors[k % 8]
      << "\"/><text x=\"" << 10 + ml + 20 << "\" y=\"" << ly - 4 << "\">" << esc(runs[k].label)
      << " (final validation loss " << num(runs[k].final_val_loss) << ")</text>\n";
  }
  o << "</svg>\n";
  write_file_atomic(path, o.str());
}

std::string compare_runs(const std::vector<RunLog>& runs, double target) {
  std::ostringstream o;
  char buf[256];
  std::snprintf(buf, sizeof buf, "target validation loss %.4f\n%-24s %9s %12s %14s %10s %8s %8s %8s\n", target, "run",
                "final", "tokens", "layer-tokens", "seconds", "tok x", "ltok x", "sec x");
  o << buf;
  Reached base = first_reaching(runs[0], target);
  for (const auto& r : runs) {
    Reached x = first_reaching(r, target);
    if (!x.reached) {
      std::snprintf(buf, sizeof buf, "%-24s %9.4f %12s %14s %10s   (does not reach the target)\n", r.label.c_str(),
                    r.final_val_loss, "-", "-", "-");
    } else {
      auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
      std::snprintf(buf, sizeof buf, "%-24s %9.4f %12.0f %14.0f %10.1f %8.3f %8.3f %8.3f\n", r.label.c_str(),
                    r.final_val_loss, x.tokens, x.layer_tokens, x.seconds, ratio(x.tokens, base.tokens),
                    ratio(x.layer_tokens, base.layer_tokens), ratio(x.seconds, base.seconds));
    }
    o << buf;
  }
  return o.str();
}

}  // namespace gannet::train
