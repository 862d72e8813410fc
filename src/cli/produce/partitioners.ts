/**
 * How the `produce` command spreads messages over a topic's partitions: by key (the
 * client's default partitioner, murmur2 as the Java client) or round-robin.
 */

export const PartitionStrategies = { KEY: 'key', ROUND_ROBIN: 'round-robin' } as const;
export type PartitionStrategy = (typeof PartitionStrategies)[keyof typeof PartitionStrategies];

/** One partition after another, whatever the key. */
export const roundRobin = () => {
  let next = 0;
  return ({ partitionMetadata }: { partitionMetadata: readonly { partitionId: number }[] }): number => {
    const partition = partitionMetadata[next % partitionMetadata.length]!.partitionId;
    next = (next + 1) % partitionMetadata.length;
    return partition;
  };
};
