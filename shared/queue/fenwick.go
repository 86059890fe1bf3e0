package queue

// fenwick is a binary indexed tree of 0/1 flags that counts the set flags
// before an index in O(log n). It grows by doubling and rebuilds itself from
// the flags, so appends cost O(1) amortised.
type fenwick struct {
	flags []bool
	tree  []int32 // tree[i] for 1-based i
}

// push appends a set flag and returns its index.
func (f *fenwick) push() int {
	idx := len(f.flags)
	f.flags = append(f.flags, true)
	if len(f.flags) >= len(f.tree) {
		f.rebuild(2*len(f.flags) + 16)
		return idx
	}
	f.add(idx, 1)
	return idx
}

// clear unsets the flag at idx; clearing an unset flag does nothing.
func (f *fenwick) clear(idx int) {
	if !f.flags[idx] {
		return
	}
	f.flags[idx] = false
	f.add(idx, -1)
}

// before returns the number of set flags at indexes below idx.
func (f *fenwick) before(idx int) int {
	n := int32(0)
	for i := idx; i > 0; i -= i & -i {
		n += f.tree[i]
	}
	return int(n)
}

func (f *fenwick) add(idx int, d int32) {
	for i := idx + 1; i < len(f.tree); i += i & -i {
		f.tree[i] += d
	}
}

func (f *fenwick) rebuild(size int) {
	f.tree = make([]int32, size)
	for i, set := range f.flags {
		if set {
			f.tree[i+1]++
		}
	}
	for i := 1; i < size; i++ {
		if j := i + (i & -i); j < size {
			f.tree[j] += f.tree[i]
		}
	}
}
