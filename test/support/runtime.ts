/**
 * The Node-RED runtime the tests load: the project's own (Node-RED 4) unless NODE_RED_RUNTIME
 * names another one's main file, as scripts/test-node22.sh does for Node-RED 5.
 */
export const NODE_RED_RUNTIME = process.env.NODE_RED_RUNTIME || require.resolve("node-red");
