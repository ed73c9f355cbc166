// MQTT topic filters, as a broker reads them: "+" is one level, "#" the rest (zero levels too).

/** Why a filter is not valid MQTT, or null when it is (the empty filter means "everything"). */
export function filterProblem(filter) {
  if (filter === "") return null;
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i];
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      return '"#" must be a whole level and the last one, e.g. factory/plant-1/#';
    }
    if (level.includes("+") && level !== "+") {
      return '"+" must be a whole level, e.g. factory/+/+/+/weld-01/telemetry';
    }
  }
  return null;
}

/** Whether `topic` matches the (valid) `filter`. */
export function topicMatches(filter, topic) {
  if (filter === "" || filter === "#") return !topic.startsWith("$");
  const want = filter.split("/");
  const have = topic.split("/");
  // Wildcards at the first level never match $SYS-style topics (MQTT 3.1.1 §4.7.2).
  if (topic.startsWith("$") && (want[0] === "+" || want[0] === "#")) return false;
  for (let i = 0; i < want.length; i++) {
    if (want[i] === "#") return true;
    if (i >= have.length) return false;
    if (want[i] !== "+" && want[i] !== have[i]) return false;
  }
  return want.length === have.length;
}
