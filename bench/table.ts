/**
 * formatTable lays out rows under a header as a plain-text table (right-aligned
 * numbers, left-aligned text), the same in a terminal and in Markdown when
 * `markdown` is set.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], markdown = false): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const numeric = header.map(
    (_, i) => rows.length > 0 && rows.every((r) => /^[-+]?[\d.,]+[%x×a-zµ/ ]*$|^[-–]$/.test(r[i] ?? "")),
  );
  const cell = (text: string, i: number) => (numeric[i] ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  const line = (cells: readonly string[]) =>
    markdown ? `| ${cells.map(cell).join(" | ")} |` : cells.map(cell).join("  ").trimEnd();
  const rule = markdown
    ? `|${widths.map((w, i) => (numeric[i] ? `${"-".repeat(w + 1)}:` : `${"-".repeat(w + 2)}`)).join("|")}|`
    : widths.map((w) => "-".repeat(w)).join("  ");
  return [line(header), rule, ...rows.map(line)].join("\n");
}
