import pc from "picocolors";

/** Colors is picocolors' formatter set; with colour off every formatter is the identity. */
export type Colors = ReturnType<typeof pc.createColors>;

/** ColorTarget is the stream colour is written to and the environment that may veto it. */
export interface ColorTarget {
  stream: { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/**
 * colorsFor returns formatters that colour only a terminal, and never when
 * NO_COLOR is set to anything (https://no-color.org): a pipe or a file gets
 * plain text a script can parse.
 */
export function colorsFor(target: ColorTarget): Colors {
  const noColor = target.env.NO_COLOR !== undefined && target.env.NO_COLOR !== "";
  return pc.createColors(target.stream.isTTY === true && !noColor);
}
