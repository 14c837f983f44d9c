import { describe, expect, it } from "vitest";
import { OTHER_CLIENTS, createClientLabels } from "../../src/server/client-labels.js";

describe("createClientLabels()", () => {
  const known = new Set(["default", "ci"]);
  const labelsOf = (names: string[]) => {
    const label = createClientLabels({ isKnown: (c) => known.has(c), limit: 2 });
    return names.map(label);
  };

  it.each([
    { name: "names within the bound as themselves", names: ["a", "b", "a"], labels: ["a", "b", "a"] },
    {
      name: "names past the bound as one label",
      names: ["a", "b", "c", "d"],
      labels: ["a", "b", OTHER_CLIENTS, OTHER_CLIENTS],
    },
    {
      name: "known names outside the count",
      names: ["a", "ci", "b", "default", "c"],
      labels: ["a", "ci", "b", "default", OTHER_CLIENTS],
    },
    {
      name: "a labelled name as itself after the bound is reached",
      names: ["a", "b", "c", "a"],
      labels: ["a", "b", OTHER_CLIENTS, "a"],
    },
  ])("should label $name", ({ names, labels }) => {
    expect(labelsOf(names)).toEqual(labels);
  });
});
