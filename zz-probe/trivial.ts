import { condition } from '@temporalio/workflow';
export async function trivial(_input: unknown): Promise<void> {
  await condition(() => false, 86_400_000);
}
