import Foundation

/// Finding a class by typing part of its name: with ImageNet's 1,000 classes a
/// drop-down list is a long scroll, and "tabby" should be a few keystrokes away.
/// Used by the matrix's class picker and the browser's class filter.
enum ClassSearch {
    /// The classes whose name contains `query`, best first: a name (or one of its
    /// comma-separated alternatives, "tabby, tabby cat") equal to the query, then names
    /// starting with it, then names with a word starting with it, then any other
    /// substring; ties in class order. Case, accents, `_` and `-` are ignored, so
    /// folder-style names ("tiger_shark") match as typed. A number also finds the class
    /// of that index (first). An empty query gives every class in order.
    static func matches(_ query: String, in names: [String]) -> [Int] {
        let q = normalized(query)
        guard !q.isEmpty else { return Array(names.indices) }
        var ranked: [(rank: Int, index: Int)] = []
        for (i, name) in names.enumerated() {
            let n = normalized(name)
            guard let range = n.range(of: q) else { continue }
            let alternatives = n.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let rank: Int
            if alternatives.contains(q) { rank = 0 }
            else if range.lowerBound == n.startIndex { rank = 1 }
            else if n.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "/" || $0 == "(" }).contains(where: { $0.hasPrefix(q) }) { rank = 2 }
            else { rank = 3 }
            ranked.append((rank, i))
        }
        ranked.sort { $0.rank != $1.rank ? $0.rank < $1.rank : $0.index < $1.index }
        var result = ranked.map(\.index)
        if let k = Int(q.trimmingCharacters(in: .whitespaces)), names.indices.contains(k) {
            result.removeAll { $0 == k }
            result.insert(k, at: 0)
        }
        return result
    }

    static func normalized(_ s: String) -> String {
        s.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            .replacingOccurrences(of: "_", with: " ").replacingOccurrences(of: "-", with: " ")
            .trimmingCharacters(in: .whitespaces)
    }
}
