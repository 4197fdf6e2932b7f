// Test-only switches that break an optimizer's definition in one small, named way (drop the √ρ,
// swap Λ and Γ, use P instead of P/β, …). The property tests turn each on and check that at
// least one property then fails: proof that the tests can fail. Read at trace time, so a
// mutated program is a different graph (and a different compiled program). Never set in library code.
export const mutations = new Set<string>();

export function mutated(name: string): boolean {
  return mutations.has(name);
}
