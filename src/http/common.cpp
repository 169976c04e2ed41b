// Headers, URL, percent/form encoding and reason phrases (include/concur/http/common.hpp).
#include "concur/http/common.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace concur::http {

namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = lower(c);
  return r;
}

bool unreserved(unsigned char c) noexcept {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int default_port(std::string_view scheme) noexcept { return scheme == "https" ? 443 : 80; }

/// Removes "." and ".." segments (RFC 3986 section 5.2.4).
std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  bool trailing_slash = false;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    trailing_slash = false;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      trailing_slash = true;
    } else if (seg == ".") {
      trailing_slash = true;
    } else if (!seg.empty() || (j == path.size() && i != 0)) {
      out.push_back(seg);
    }
    i = j + 1;
  }
  std::string r;
  for (std::string_view seg : out) {
    r += '/';
    r += seg;
  }
  if (r.empty() || trailing_slash) r += '/';
  return r;
}

/// Percent-encodes the bytes URL::parse() refuses in a path or query (controls, space, DEL and
/// non-ASCII); the rest stays as it is.
std::string encode_unsafe(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string r;
  r.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c >= 0x7f) {
      r += '%';
      r += kHex[c >> 4];
      r += kHex[c & 15];
    } else {
      r += ch;
    }
  }
  return r;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// ---- Headers -----------------------------------------------------------------------------------

Headers::Headers(Field a) { fields_.push_back(std::move(a)); }
Headers::Headers(Field a, Field b) : Headers(std::move(a)) { fields_.push_back(std::move(b)); }
Headers::Headers(Field a, Field b, Field c) : Headers(std::move(a), std::move(b)) { fields_.push_back(std::move(c)); }
Headers::Headers(Field a, Field b, Field c, Field d) : Headers(std::move(a), std::move(b), std::move(c)) {
  fields_.push_back(std::move(d));
}
Headers::Headers(Field a, Field b, Field c, Field d, Field e)
    : Headers(std::move(a), std::move(b), std::move(c), std::move(d)) {
  fields_.push_back(std::move(e));
}
Headers::Headers(Field a, Field b, Field c, Field d, Field e, Field f)
    : Headers(std::move(a), std::move(b), std::move(c), std::move(d), std::move(e)) {
  fields_.push_back(std::move(f));
}
Headers::Headers(Field a, Field b, Field c, Field d, Field e, Field f, Field g)
    : Headers(std::move(a), std::move(b), std::move(c), std::move(d), std::move(e), std::move(f)) {
  fields_.push_back(std::move(g));
}
Headers::Headers(Field a, Field b, Field c, Field d, Field e, Field f, Field g, Field h)
    : Headers(std::move(a), std::move(b), std::move(c), std::move(d), std::move(e), std::move(f), std::move(g)) {
  fields_.push_back(std::move(h));
}

void Headers::add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }

void Headers::set(std::string name, std::string value) {
  erase(name);
  fields_.emplace_back(std::move(name), std::move(value));
}

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto& [n, v] : fields_) {
    if (iequals(n, name)) return v;
  }
  return std::nullopt;
}

std::string Headers::get(std::string_view name, std::string_view fallback) const {
  for (const auto& [n, v] : fields_) {
    if (iequals(n, name)) return v;
  }
  return std::string(fallback);
}

std::vector<std::string> Headers::get_all(std::string_view name) const {
  std::vector<std::string> r;
  for (const auto& [n, v] : fields_) {
    if (iequals(n, name)) r.push_back(v);
  }
  return r;
}

bool Headers::contains(std::string_view name) const {
  return std::any_of(fields_.begin(), fields_.end(), [&](const Field& f) { return iequals(f.first, name); });
}

std::size_t Headers::erase(std::string_view name) {
  auto before = fields_.size();
  std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
  return before - fields_.size();
}

// ---- encoding ----------------------------------------------------------------------------------

std::string quote(std::string_view s, std::string_view safe) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string r;
  r.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (unreserved(c) || safe.find(ch) != std::string_view::npos) {
      r += ch;
    } else {
      r += '%';
      r += kHex[c >> 4];
      r += kHex[c & 15];
    }
  }
  return r;
}

std::string unquote(std::string_view s, bool plus_is_space) {
  std::string r;
  r.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        r += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    r += (plus_is_space && c == '+') ? ' ' : c;
  }
  return r;
}

std::string urlencode(const Params& params) {
  std::string r;
  for (const auto& [k, v] : params) {
    if (!r.empty()) r += '&';
    r += quote(k, " ");
    r += '=';
    r += quote(v, " ");
  }
  std::replace(r.begin(), r.end(), ' ', '+');
  return r;
}

Params parse_qs(std::string_view query) {
  Params r;
  std::size_t i = 0;
  while (i < query.size()) {
    std::size_t j = query.find('&', i);
    if (j == std::string_view::npos) j = query.size();
    std::string_view part = query.substr(i, j - i);
    if (!part.empty()) {
      std::size_t eq = part.find('=');
      if (eq == std::string_view::npos) {
        r.emplace_back(unquote(part, true), "");
      } else {
        r.emplace_back(unquote(part.substr(0, eq), true), unquote(part.substr(eq + 1), true));
      }
    }
    i = j + 1;
  }
  return r;
}

// ---- URL ---------------------------------------------------------------------------------------

URL URL::parse(std::string_view text) {
  auto bad = [&](const char* why) {
    return InvalidURL("invalid URL '" + std::string(text) + "': " + why, std::string(text));
  };
  URL u;
  std::size_t colon = text.find("://");
  if (colon == std::string_view::npos) throw bad("not absolute (no scheme://)");
  u.scheme = to_lower(text.substr(0, colon));
  if (u.scheme != "http" && u.scheme != "https") throw bad("only http and https are supported");
  std::string_view rest = text.substr(colon + 3);
  std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  if (authority.empty()) throw bad("no host");
  std::string_view port_text;
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) throw bad("unterminated IPv6 address");
    // Lower case as for other hosts, so that str() and parse() give the same URL back.
    u.host = to_lower(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw bad("junk after the IPv6 address");
      port_text = after.substr(1);
    }
  } else {
    std::size_t c = authority.rfind(':');
    if (c != std::string_view::npos) {
      port_text = authority.substr(c + 1);
      authority = authority.substr(0, c);
    }
    u.host = to_lower(authority);
  }
  if (u.host.empty()) throw bad("no host");
  for (char c : u.host) {
    // '[' and ']' only delimit an IPv6 address: "http://[[]/" would give host "[", which
    // str() writes as "http://[/", which does not parse.
    if (c <= ' ' || c == '/' || c == '\\' || c == '[' || c == ']' || static_cast<unsigned char>(c) >= 0x7f)
      throw bad("bad character in the host");
  }
  u.port = default_port(u.scheme);
  if (!port_text.empty()) {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || p <= 0 || p > 65535) throw bad("bad port");
    u.port = p;
  }
  if (auto hash = tail.find('#'); hash != std::string_view::npos) {
    u.fragment = std::string(tail.substr(hash + 1));
    tail = tail.substr(0, hash);
  }
  if (auto q = tail.find('?'); q != std::string_view::npos) {
    u.query = std::string(tail.substr(q + 1));
    tail = tail.substr(0, q);
  }
  u.path = tail.empty() ? "/" : std::string(tail);
  for (char c : u.path) {
    if (c <= ' ' || c == 0x7f) throw bad("bad character in the path (quote it)");
  }
  for (char c : u.query) {
    if (c <= ' ' || c == 0x7f) throw bad("bad character in the query (quote it)");
  }
  return u;
}

std::string URL::target() const { return query.empty() ? path : path + "?" + query; }

std::string URL::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != default_port(scheme)) h += ":" + std::to_string(port);
  return h;
}

std::string URL::str() const { return scheme + "://" + authority() + target(); }

URL URL::join(std::string_view ref) const {
  if (ref.find("://") != std::string_view::npos) {
    std::size_t first_special = ref.find_first_of("/?#");
    if (first_special == std::string_view::npos || ref.find("://") < first_special) return parse(ref);
  }
  if (ref.starts_with("//")) return parse(scheme + ":" + std::string(ref));
  URL u = *this;
  u.fragment.clear();
  if (auto hash = ref.find('#'); hash != std::string_view::npos) {
    u.fragment = std::string(ref.substr(hash + 1));
    ref = ref.substr(0, hash);
  }
  if (ref.empty()) return u;
  std::string_view qpart;
  std::string_view ppart = ref;
  if (auto q = ref.find('?'); q != std::string_view::npos) {
    qpart = ref.substr(q + 1);
    ppart = ref.substr(0, q);
  }
  if (ppart.empty()) {
    u.query = encode_unsafe(qpart);
    return u;
  }
  std::string merged;
  // A Location header may hold spaces, control or non-ASCII bytes that parse() refuses in a
  // path or query: percent-encode them (as browsers do) rather than put them in a request line.
  std::string qenc = encode_unsafe(qpart);
  if (ppart.front() == '/') {
    merged = std::string(ppart);
  } else {
    merged = path.substr(0, path.rfind('/') + 1) + std::string(ppart);
  }
  u.path = remove_dot_segments(encode_unsafe(merged));
  u.query = std::move(qenc);
  return u;
}

void URL::add_params(const Params& params) {
  if (params.empty()) return;
  std::string enc = urlencode(params);
  query = query.empty() ? enc : query + "&" + enc;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace concur::http
