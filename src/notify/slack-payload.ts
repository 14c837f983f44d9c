/**
 * The JSON a Slack incoming webhook takes: `text` (what notifications and
 * old clients show) and `blocks` (what the channel shows). Slack reads `&`,
 * `<` and `>` as markup, so every value from outside is escaped with
 * slackEscape before it is put in.
 */

/** SlackText is a message as a person reads it: a headline, then lines of detail. */
export interface SlackText {
  headline: string;
  details: string[];
}

// Slack refuses a section over 3000 characters and a message over 50 blocks
// (https://api.slack.com/reference/block-kit/blocks).
const SECTION_CHARS = 2900;
const MAX_SECTIONS = 40;

/** slackEscape makes text safe inside Slack mrkdwn (https://api.slack.com/reference/surfaces/formatting#escaping). */
export function slackEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** slackBody renders a message as the request body, with `footer` in small print under it. */
export function slackBody(message: SlackText, footer: string): string {
  const sections = sectionsOf([message.headline, ...message.details]).map((text) => ({
    type: "section",
    text: { type: "mrkdwn", text },
  }));
  return JSON.stringify({
    text: message.headline,
    blocks: [...sections, { type: "context", elements: [{ type: "mrkdwn", text: footer }] }],
  });
}

/** sectionsOf packs lines into as few sections as fit; a long digest is cut with a note rather than refused. */
function sectionsOf(lines: string[]): string[] {
  const sections: string[] = [];
  let current = "";
  for (const raw of lines) {
    const line = raw.length > SECTION_CHARS ? `${raw.slice(0, SECTION_CHARS - 1)}…` : raw;
    if (current !== "" && current.length + 1 + line.length > SECTION_CHARS) {
      sections.push(current);
      current = "";
    }
    current = current === "" ? line : `${current}\n${line}`;
  }
  if (current !== "") sections.push(current);
  if (sections.length <= MAX_SECTIONS) return sections;
  return [...sections.slice(0, MAX_SECTIONS - 1), `… ${sections.length - MAX_SECTIONS + 1} more sections cut`];
}
