#include "gannet/train/moe_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "gannet/core/format_number.h"
#include "gannet/core/atomic_file.h"
#include "gannet/core/error.h"

namespace gannet::train {

namespace {
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

// t in [-1, 1]: blue (fewer choices than uniform) .. white (uniform) .. red (more).
std::string colour(double t) {
  t = std::clamp(t, -1.0, 1.0);
  const double r0 = t < 0 ? 31 : 214, g0 = t < 0 ? 119 : 39, b0 = t < 0 ? 180 : 40, a = std::fabs(t);
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", (int)std::lround(255 + a * (r0 - 255)),
                (int)std::lround(255 + a * (g0 - 255)), (int)std::lround(255 + a * (b0 - 255)));
  return buf;
}

// The colour scale: log2 of (share / uniform share), clamped to [1/4x, 4x].
double scale(double ratio) { return ratio <= 0 ? -1.0 : std::clamp(std::log2(ratio) / 2.0, -1.0, 1.0); }
}  // namespace

std::string moe_chart_svg(const MoeStats& s, const MoeChartOptions& opt) {
  GANNET_CHECK(!s.layers.empty(), "moe chart: no MoE layer to draw");
  int64_t max_e = 1;
  for (const MoeLayerReport& r : s.layers) max_e = std::max(max_e, r.experts);
  const double margin = 20, label_w = 120, note_w = 220, cell_h = 40, row_gap = 8, top = 76;
  const double W = std::clamp(48.0 * (double)max_e, 480.0, 960.0);
  const double x0 = margin + label_w;
  const double rows_h = (double)s.layers.size() * (cell_h + row_gap);
  const double legend_y = top + rows_h + 24;
  const double total_w = x0 + W + note_w + margin, total_h = legend_y + 78;

  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << total_w << "\" height=\"" << total_h
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<defs><linearGradient id=\"load\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">";
  for (int i = 0; i <= 4; ++i)
    o << "<stop offset=\"" << 25 * i << "%\" stop-color=\"" << colour(-1.0 + 0.5 * i) << "\"/>";
  o << "</linearGradient></defs>\n";
  o << "<text x=\"" << margin << "\" y=\"28\" font-size=\"16\" font-weight=\"bold\">Expert load per MoE layer"
    << (opt.title.empty() ? "" : ": " + esc(opt.title)) << "</text>\n";
  o << "<text x=\"" << margin << "\" y=\"50\" fill=\"#444\">share of routing choices per expert, before the capacity "
       "limit; "
    << s.windows << " windows of " << s.seq_len << " tokens, " << s.batch << " per pass</text>\n";

  for (size_t li = 0; li < s.layers.size(); ++li) {
    const MoeLayerReport& r = s.layers[li];
    const double y = top + (double)li * (cell_h + row_gap), cw = W / (double)r.experts;
    o << "<text x=\"" << x0 - 10 << "\" y=\"" << y + 17 << "\" text-anchor=\"end\" font-weight=\"bold\">block "
      << r.block << "</text><text x=\"" << x0 - 10 << "\" y=\"" << y + 32 << "\" text-anchor=\"end\" fill=\"#444\">"
      << r.experts << " experts, " << (r.expert_choice ? "EC" : "top-" + std::to_string(r.k)) << "</text>\n";
    for (int64_t e = 0; e < r.experts; ++e) {
      const ExpertStats& x = r.expert[(size_t)e];
      const double share = r.demand_share(e), t = scale(share * (double)r.experts), cx = x0 + (double)e * cw;
      std::ostringstream tip;
      tip << "block " << r.block << ", expert " << e << ": " << format_number("%.2f%%", 100 * share) << " of choices ("
          << x.demand << "), " << format_number("%.2f%%", 100 * r.kept_share(e)) << " of slots (" << x.kept << ")";
      if (r.capacity >= 0) tip << ", " << format_number("%.1f%%", 100 * r.capacity_use(e)) << " of capacity";
      if (!x.top_tokens.empty()) tip << "; top tokens:";
      for (size_t i = 0; i < x.top_tokens.size(); ++i)
        tip << (i ? "  " : " ")
            << (opt.token_name ? opt.token_name(x.top_tokens[i].first) : std::to_string(x.top_tokens[i].first)) << " ("
            << x.top_tokens[i].second << ")";
      o << "<rect class=\"cell\" x=\"" << cx << "\" y=\"" << y << "\" width=\"" << cw << "\" height=\"" << cell_h
        << "\" fill=\"" << colour(t) << "\" stroke=\"#888\" stroke-width=\"0.5\"><title>" << esc(tip.str())
        << "</title></rect>\n";
      const char* ink = std::fabs(t) > 0.6 ? "white" : "#222";
      if (r.capacity >= 0)  // slots processed as a fraction of capacity: a bar along the cell's bottom
        o << "<rect class=\"use\" x=\"" << cx + 1 << "\" y=\"" << y + cell_h - 5 << "\" width=\""
          << std::max(0.0, (cw - 2) * std::min(1.0, r.capacity_use(e))) << "\" height=\"4\" fill=\"#333\" "
          << "fill-opacity=\"0.6\"/>\n";
      if (cw >= 44)
        o << "<text x=\"" << cx + 3 << "\" y=\"" << y + 11 << "\" font-size=\"9\" fill=\"" << ink << "\">" << e
          << "</text>\n";
      if (cw >= 30)
        o << "<text x=\"" << cx + cw / 2 << "\" y=\"" << y + 28 << "\" text-anchor=\"middle\" font-size=\""
          << (cw >= 44 ? 12 : 9) << "\" fill=\"" << ink << "\">" << format_number(share >= 0.1 ? "%.0f%%" : "%.1f%%", 100 * share)
          << "</text>\n";
    }
    const double nx = x0 + W + 12;
    o << "<text x=\"" << nx << "\" y=\"" << y + 17 << "\">dropped " << format_number("%.1f%%", 100 * r.dropped_fraction())
      << (r.capacity < 0 ? " (dropless)" : "") << "</text><text x=\"" << nx << "\" y=\"" << y + 32
      << "\" fill=\"#444\">entropy " << format_number("%.2f", r.entropy) << " nats ("
      << format_number("%.0f%%", 100 * r.entropy_fraction()) << " of log E)</text>\n";
  }

  // Legend: the colour scale.
  const double lw = 240;
  o << "<rect x=\"" << x0 << "\" y=\"" << legend_y << "\" width=\"" << lw
    << "\" height=\"12\" fill=\"url(#load)\" stroke=\"#888\" stroke-width=\"0.5\"/>\n";
  const char* ticks[] = {"0.25x", "0.5x", "1x", "2x", "4x"};
  for (int i = 0; i <= 4; ++i) {
    const double tx = x0 + lw * i / 4.0;
    o << "<line x1=\"" << tx << "\" x2=\"" << tx << "\" y1=\"" << legend_y + 12 << "\" y2=\"" << legend_y + 16
      << "\" stroke=\"#444\"/><text x=\"" << tx << "\" y=\"" << legend_y + 28 << "\" text-anchor=\"middle\">"
      << ticks[i] << "</text>\n";
  }
  o << "<text x=\"" << x0 + lw + 14 << "\" y=\"" << legend_y + 10
    << "\">colour: share of choices / uniform share 1/E</text>\n";
  o << "<text x=\"" << x0 << "\" y=\"" << legend_y + 48
    << "\" fill=\"#444\">blue: under-used, red: over-used; cell text: share of the layer's choices</text>\n";
  o << "<text x=\"" << x0 << "\" y=\"" << legend_y + 64
    << "\" fill=\"#444\">bottom bar: slots processed / capacity; hover a cell for counts and top tokens</text>\n";
  o << "</svg>\n";
  return o.str();
}

void write_moe_chart(const MoeStats& stats, const std::string& path, const MoeChartOptions& options) {
  write_file_atomic(path, moe_chart_svg(stats, options));
}

}  // namespace gannet::train
