/* A small, safe Markdown-to-DOM renderer for untrusted model output.
 *
 * It never parses HTML: every piece of text becomes a text node, and only these elements
 * are created: p, h3-h6, ul, ol, li, pre, code, em, strong, blockquote, br, and a (only
 * for http/https URLs, opened in a new tab with rel="noopener noreferrer nofollow").
 * Anything else in the input, including raw HTML tags, shows up as literal text.
 */
(function (global) {
  "use strict";

  var SAFE_URL = /^https?:\/\/[^\s]+$/i;
  // code spans | **strong** | __strong__ | *em* | _em_ | [text](url) | bare http(s) URL
  var INLINE = /(`+)([\s\S]*?)\1|\*\*(?=\S)([\s\S]*?\S)\*\*|__(?=\S)([\s\S]*?\S)__|\*(?=[^\s*])([^*]*?[^\s*]|[^\s*])\*|\b_(?=[^\s_])([^_]*?[^\s_]|[^\s_])_\b|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'"])/g;

  function el(tag, children) {
    var node = document.createElement(tag);
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  function text(s) { return document.createTextNode(s); }

  function link(label, url) {
    if (!SAFE_URL.test(url)) return text(label === url ? url : label + " (" + url + ")");
    var a = document.createElement("a");
    a.href = url;  // a property set, checked above: only http(s)
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    a.appendChild(text(label));
    return a;
  }

  function inline(src, depth) {
    var out = [], last = 0, m;
    depth = depth || 0;
    INLINE.lastIndex = 0;
    var re = new RegExp(INLINE.source, "g");
    while ((m = re.exec(src)) !== null) {
      if (m.index > last) out.push(text(src.slice(last, m.index)));
      if (m[1]) out.push(el("code", [text(m[2])]));
      else if (m[3] !== undefined || m[4] !== undefined) {
        out.push(el("strong", depth < 3 ? inline(m[3] !== undefined ? m[3] : m[4], depth + 1) : [text(m[3] || m[4])]));
      } else if (m[5] !== undefined || m[6] !== undefined) {
        out.push(el("em", depth < 3 ? inline(m[5] !== undefined ? m[5] : m[6], depth + 1) : [text(m[5] || m[6])]));
      } else if (m[7] !== undefined) out.push(link(m[7], m[8]));
      else if (m[9] !== undefined) out.push(link(m[9], m[9]));
      last = re.lastIndex;
      if (m[0].length === 0) re.lastIndex++;
    }
    if (last < src.length) out.push(text(src.slice(last)));
    return out;
  }

  function withBreaks(lines) {
    var out = [];
    lines.forEach(function (line, i) {
      if (i > 0) out.push(el("br"));
      inline(line).forEach(function (n) { out.push(n); });
    });
    return out;
  }

  var FENCE = /^\s*(```+|~~~+)\s*([\w+-]*)\s*$/;
  var HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;
  var BULLET = /^\s*[-*+]\s+(.*)$/;
  var NUMBERED = /^\s*(\d{1,9})[.)]\s+(.*)$/;
  var QUOTE = /^\s*>\s?(.*)$/;

  /* Render ``src`` into a DocumentFragment. Unclosed fences (while streaming) run to the end. */
  function render(src) {
    var frag = document.createDocumentFragment();
    var lines = String(src).replace(/\r\n?/g, "\n").split("\n");
    var i = 0, para = [];

    function flush() {
      if (para.length) { frag.appendChild(el("p", withBreaks(para))); para = []; }
    }

    while (i < lines.length) {
      var line = lines[i], m;
      if ((m = FENCE.exec(line))) {
        flush();
        var fence = m[1], body = [];
        i++;
        while (i < lines.length && lines[i].trim().indexOf(fence) !== 0) body.push(lines[i++]);
        i++;  // the closing fence (or past the end)
        var code = el("code", [text(body.join("\n"))]);
        if (m[2]) code.className = "language-" + m[2].replace(/[^\w+-]/g, "");
        frag.appendChild(el("pre", [code]));
        continue;
      }
      if (!line.trim()) { flush(); i++; continue; }
      if ((m = HEADING.exec(line))) {
        flush();
        frag.appendChild(el("h" + Math.min(6, m[1].length + 2), inline(m[2])));
        i++;
        continue;
      }
      if (BULLET.test(line) || NUMBERED.test(line)) {
        flush();
        var ordered = !BULLET.test(line), list = el(ordered ? "ol" : "ul");
        if (ordered) {
          var start = parseInt(NUMBERED.exec(line)[1], 10);
          if (start !== 1) list.start = start;
        }
        var pattern = ordered ? NUMBERED : BULLET;
        while (i < lines.length && (m = pattern.exec(lines[i]))) {
          list.appendChild(el("li", inline(ordered ? m[2] : m[1])));
          i++;
        }
        frag.appendChild(list);
        continue;
      }
      if (QUOTE.test(line)) {
        flush();
        var quoted = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) { quoted.push(m[1]); i++; }
        frag.appendChild(el("blockquote", [el("p", withBreaks(quoted))]));
        continue;
      }
      para.push(line);
      i++;
    }
    flush();
    return frag;
  }

  global.StudioMarkdown = { render: render, inline: inline, SAFE_URL: SAFE_URL };
})(window);
