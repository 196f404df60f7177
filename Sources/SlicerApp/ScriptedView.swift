extension AppView {
    /// The right panel's tab (and the CAR panel's part) by name, for scripted
    /// screenshots (`cnnslicer screenshot --select tab=car-curve`). False for an unknown name.
    public func showPanel(named name: String) -> Bool {
        let tabs = ["matrix": (0, 0), "car": (1, 0), "car-curve": (1, 1), "car-results": (1, 2), "scatter": (2, 0)]
        guard let (index, section) = tabs[name] else { return false }
        rightTab = index
        if index == 1 { carPanel.section = section }
        return true
    }

    /// The browser's class search, as if typed and Return pressed (screenshots): the best
    /// match becomes the filter; an empty text shows every class.
    public func filterBrowser(_ text: String) {
        let names = model.workspace.classNames
        setBrowserFilter(text.isEmpty ? nil : ClassSearch.matches(text, in: names).first)
    }

    /// Opens the matrix's class picker with `query` typed (screenshots).
    public func openClassPicker(query: String) {
        rightTab = 0
        openClassPicker()
        matrix.pickerQuery = query
    }

    /// Adds the best match of each query as a matrix column, as the picker does (screenshots).
    public func addMatrixClasses(_ queries: [String]) {
        let names = model.workspace.classNames
        for q in queries {
            if let k = ClassSearch.matches(q, in: names).first, !matrix.pinned.contains(k) { matrix.pinned.append(k) }
        }
    }

    /// Pages of the feature-map grid in the last frame, and the page shown (frame-time runs).
    public var mapPageCount: Int { maps.pageCount }
    public var mapPage: Int {
        get { maps.page }
        set { maps.page = newValue }
    }
}
